"""Gradient-safe arithmetic used throughout the model.

The model is differentiated with respect to every continuous input, so the usual pitfalls
matter: ``where`` evaluates both branches (a NaN in the dead branch poisons the gradient, hence
the *double-where* below, JAX FAQ "gradients contain NaN where using where"), and ``max`` has a
kink. The roofline uses a p-norm soft maximum: scale-free, an upper bound of ``max`` with
error at most ``2**(1/p) - 1`` where both terms tie (exactly where real kernels lose overlap).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array

TINY = 1e-30


def require_float64() -> None:
    """Refuse to run in float32: the model mixes 1e15 FLOP/s with 1e-9 s terms, and float32
    silently loses the small ones. The model never changes JAX's settings itself (dse's entry
    points do, ``dse.configure``), so a caller that skipped them is told how to fix it."""
    if not jax.config.jax_enable_x64:
        raise RuntimeError(
            "dse's model needs JAX float64: call dse.configure() (or "
            'jax.config.update("jax_enable_x64", True)) before building its inputs'
        )


def safe_div(num: Array, den: Array, fallback: float = 0.0) -> Array:
    """``num / den`` where ``den > 0``, else ``fallback``; finite gradients either way."""
    ok = den > 0
    safe_den = jnp.where(ok, den, 1.0)
    return jnp.where(ok, num / safe_den, fallback)


ROOFLINE_P = 4  # p-norm of the roofline soft maximum (static: integer powers are cheap)


def soft_max(a: Array, b: Array, p: int | float | Array = ROOFLINE_P) -> Array:
    """Smooth ``max(a, b)`` for non-negative ``a, b``: ``(a**p + b**p) ** (1/p)``.

    Computed as ``m * (1 + r**p) ** (1/p)`` with ``m = max, r = min/max`` so it neither
    overflows nor underflows for times between 1e-12 s and 1e3 s. Returns 0 where both are 0
    (with zero gradient, not NaN).
    """
    hi = jnp.maximum(a, b)
    lo = jnp.minimum(a, b)
    ok = hi > 0
    safe_hi = jnp.where(ok, hi, 1.0)
    ratio = lo / safe_hi
    if isinstance(p, int) and p == 4:
        r2 = ratio * ratio
        factor = jnp.sqrt(jnp.sqrt(1.0 + r2 * r2))  # (1 + r^4)^(1/4) without exp/log
    else:
        factor = (1.0 + ratio**p) ** (1.0 / p)
    return jnp.where(ok, safe_hi * factor, 0.0)


def soft_min(a: Array, b: Array, p: Array | float = 8.0) -> Array:
    """Smooth ``min(a, b)`` for positive ``a, b`` (harmonic p-norm): a lower bound of ``min``."""
    lo = jnp.minimum(a, b)
    hi = jnp.maximum(a, b)
    ok = lo > 0
    safe_lo = jnp.where(ok, lo, 1.0)
    ratio = safe_lo / jnp.where(ok, hi, 1.0)
    return jnp.where(ok, safe_lo * (1.0 + ratio**p) ** (-1.0 / p), 0.0)


def safe_pow(base: Array, exponent: Array) -> Array:
    """``base ** exponent`` for ``base`` in [0, 1]; gradient finite at ``base == 0``."""
    ok = base > 0
    safe_base = jnp.where(ok, base, 1.0)
    return jnp.where(ok, jnp.exp(exponent * jnp.log(safe_base)), 0.0)


def finite_or(x: Array, fallback: float) -> Array:
    """Replace non-finite values (which should not occur) by ``fallback``: a last line of defence
    so a metrics table never carries NaN; tests assert it is never needed."""
    return jnp.where(jnp.isfinite(x), x, fallback)


# E[max of n i.i.d. standard normals] for n = 1, 2, 4, ..., 1024 (Harter 1961 tables; exact
# integrals), interpolated in log2(n).
_NORMAL_MAX_LOG2N = tuple(float(k) for k in range(11))
_NORMAL_MAX = (0.0, 0.5642, 1.0294, 1.4236, 1.7660, 2.0697, 2.3359, 2.5735, 2.7881, 2.9840, 3.1641)


def expected_max_poisson(mean: Array, n: Array, terms: int = 14, switch: float = 4.0) -> Array:
    """E[max of ``n`` i.i.d. Poisson(``mean``)], smooth in ``mean`` (exactly ``mean`` for n = 1).

    Below ``switch``: ``E[max] = sum_k P(max >= k) = sum_k 1 - F(k-1)^n`` with the Poisson CDF
    built by the pmf recursion ``p_k = p_{k-1} mean / k`` (``terms`` terms). Above: the normal
    approximation with a Cornish-Fisher skewness term, ``mean + sqrt(mean) z_n + (z_n^2 - 1)/6``
    (Poisson skewness 1/sqrt(mean)), z_n the expected maximum of n standard normals. The two
    agree to ~1 % at the switch (checked against Monte Carlo in tests). Used for the busiest
    data-parallel rank, which every synchronized step waits for.
    """
    lam = jnp.maximum(mean, 0.0)
    pmf = jnp.exp(-lam)
    cdf = pmf
    total = jnp.zeros_like(lam)
    for k in range(1, terms + 1):
        # P(max >= k) = 1 - P(X <= k-1)^n ; cdf currently holds P(X <= k-1).
        total = total + 1.0 - jnp.exp(n * jnp.log(jnp.clip(cdf, 1e-300, 1.0)))
        pmf = pmf * lam / k
        cdf = cdf + pmf
    z = jnp.interp(
        jnp.log2(jnp.maximum(n, 1.0)), jnp.asarray(_NORMAL_MAX_LOG2N), jnp.asarray(_NORMAL_MAX)
    )
    gauss = lam + jnp.sqrt(jnp.maximum(lam, switch)) * z + (z * z - 1.0) / 6.0
    blended = jnp.where(lam < switch, total, gauss)
    return jnp.where(n > 1.0, jnp.maximum(blended, lam), lam)


def ordered_sum(x: Array, axis: int = 0) -> Array:
    """Sum over ``axis`` in one fixed pairwise order, written as elementwise adds of halves
    (zero-padded to a power of two; adding zeros is exact).

    Why: a design's metrics must not depend on the batch it is evaluated in (a Dask worker's
    chunk differs from the single process's, and their tables are compared bit for bit). XLA
    keeps the order of elementwise additions, but a ``reduce``'s summation order follows how it
    is vectorized, which depends on the batch shape under ``vmap``: the session sums differed in
    the last bit between batches of 32 and 256 designs."""
    x = jnp.moveaxis(x, axis, 0)
    n = x.shape[0]
    size = 1 << max(n - 1, 0).bit_length()
    if size != n:
        x = jnp.concatenate([x, jnp.zeros((size - n, *x.shape[1:]), x.dtype)])
    while x.shape[0] > 1:
        half = x.shape[0] // 2
        x = x[:half] + x[half:]
    return x[0]
