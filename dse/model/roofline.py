"""Time of one operation from its FLOPs and bytes: a smooth, calibrated roofline.

``t = softmax_p(flops / (peak * eff_c), bytes / (bw * mbu))`` where ``eff_c`` grows with the
GEMM's M dimension (``m / (m + m_half)``, small GEMMs do not fill the machine). The p-norm soft
maximum models imperfect overlap of compute and memory traffic near the ridge point and keeps
gradients smooth. Each :class:`Cost` also splits its time into compute / memory / network /
overhead shares so the dominant limiter of a design can be named.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jax import Array

from .numerics import ROOFLINE_P, safe_div, soft_max


class Cost(eqx.Module):
    """Seconds, with the share attributable to each limiter (shares sum to ``total``)."""

    total: Array
    compute: Array
    memory: Array
    network: Array
    overhead: Array

    def __add__(self, other: Cost) -> Cost:
        return Cost(*[a + b for a, b in zip(_fields(self), _fields(other))])

    def scale(self, k: Array) -> Cost:
        return Cost(*[a * k for a in _fields(self)])

    def as_tuple(self) -> tuple[Array, ...]:
        return _fields(self)


def select_cost(flag: Array, if_true: Cost, if_false: Cost) -> Cost:
    """``jnp.where`` over every share of two costs (both branches are computed: pick, don't
    branch, so vmapped designs with different choices stay in one program)."""
    return Cost(*[jnp.where(flag, a, b) for a, b in zip(_fields(if_true), _fields(if_false))])


def _fields(c: Cost) -> tuple[Array, ...]:
    return (c.total, c.compute, c.memory, c.network, c.overhead)


def network_cost(seconds: Array) -> Cost:
    z = jnp.zeros_like(seconds)
    return Cost(seconds, z, z, seconds, z)


def overhead_cost(seconds: Array) -> Cost:
    z = jnp.zeros_like(seconds)
    return Cost(seconds, z, z, z, seconds)


def gemm_efficiency(m: Array, mfu: Array, half_tokens: Array) -> Array:
    """Achieved fraction of peak for a GEMM with ``m`` rows (tokens): saturates at ``mfu``."""
    return mfu * safe_div(m, m + half_tokens)


def op_cost(
    flops: Array, nbytes: Array, flops_rate: Array, bytes_rate: Array, p: int = ROOFLINE_P
) -> Cost:
    """Smooth roofline time of one op; ``*_rate`` are *achieved* FLOP/s and B/s (> 0)."""
    t_compute = safe_div(flops, flops_rate)
    t_memory = safe_div(nbytes, bytes_rate)
    total = soft_max(t_compute, t_memory, p)
    # Attribute the time by the p-th power weights (the same ones the p-norm uses).
    wc = t_compute**p  # integer power: cheap and exact
    wm = t_memory**p
    share_c = safe_div(wc, wc + wm, 0.5)
    z = jnp.zeros_like(total)
    return Cost(total, total * share_c, total * (1.0 - share_c), z, z)
