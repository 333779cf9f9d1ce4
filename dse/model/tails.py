"""Latency percentiles: p50, p90 and p99 of TTFT and TPOT around the model's means.

The means are the serving model's (``system_solve.serve_at``); this module adds how requests
spread around them. Each latency is a deterministic part plus a sum of independent random
parts whose means are already in the model's mean and whose variances are written here:

TTFT (per request)

* the framework's request path and the P/D KV hand-off: deterministic;
* the request's own prefill, linear in its uncached prompt tokens (ASSUMPTION: attention's
  quadratic term is left out of the spread): standard deviation ``cv_new * prefill``, with
  ``cv_new`` the workload's ``new_tokens_cv``;
* aggregated serving: the other prompts admitted in the same iteration, a Poisson number
  (Little's law gives their mean, ``prompts``), each costing ``(admitted - decode) /
  max(prompts, 1)``; the wait for the next iteration boundary, uniform on ``[0, iteration]``
  (the model's mean is half an iteration); TensorRT-LLM's attention-DP hold, uniform on
  ``[0, 2 * mean]`` (``system_solve.balance_wait``);
* disaggregated serving: the prefill pool's queue, whose mean is the M/D/1 wait; its
  distribution is taken as an atom at 0 of mass ``1 - rho`` and an exponential tail of mean
  ``wait / rho`` (the exponential approximation of the M/G/1 waiting time: exact for M/M/1,
  asymptotically exact in heavy traffic, Kingman 1962).

TPOT (per request: the mean of its steps)

* aggregated serving: each step carries a Poisson number of prompts, so a step's variance is
  ``prompts * c^2`` with ``c`` the cost of one prompt; a request averages ``n = O / tau`` steps
  and divides by ``tau``, so its TPOT variance is ``Var(step) / (n tau^2) = Var(step) / (O tau)``,
  averaged over the output lengths with ``E[1/O] = (1 + cv_O^2) / E[O]`` (exact for a
  lognormal O);
* speculative decoding: the tokens a step commits are a truncated geometric count
  (``speculation.expected_tokens_per_step``); a request's TPOT is its step time over the mean
  of ``O / tau`` such counts, variance by the delta method;
* not modelled (named): MoE expert-load imbalance and the context mix inside a batch vary
  from step to step but average out over a request's hundreds of steps; a disaggregated or
  SRAM-first (statically scheduled) decode step is otherwise the same every step, so their
  TPOT spread comes only from speculation.

The random parts are summed by their means and variances and the sum is taken as lognormal
with that mean and variance (Fenton-Wilkinson moment matching, Fenton 1960): right-skewed, p50
below the mean, and exactly the mean at every percentile when nothing varies. A closed-loop
benchmark's queue for a free slot (``serving.py``) is deterministic here.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
from jax import Array

from .numerics import safe_div

# Standard-normal quantiles of the percentiles reported: p50, p90, p99.
PERCENTILES = (50, 90, 99)
Z = (0.0, 1.2815515655446004, 2.3263478740408408)


class Spread(NamedTuple):
    """A latency as ``fixed + X``: ``fixed`` deterministic, ``X`` random with ``mean`` and
    ``variance`` (seconds, seconds^2)."""

    fixed: Array
    mean: Array
    variance: Array

    def quantile(self, z: float) -> Array:
        """``fixed`` plus the quantile at standard-normal ``z`` of the lognormal with X's mean
        and variance (seconds)."""
        m = jnp.maximum(self.mean, 0.0)
        cv2 = safe_div(jnp.maximum(self.variance, 0.0), m * m, 0.0)
        s2 = jnp.log1p(cv2)
        # Double where: sqrt's derivative is infinite at 0 (nothing varies).
        positive = s2 > 0.0
        s = jnp.where(positive, jnp.sqrt(jnp.where(positive, s2, 1.0)), 0.0)
        return self.fixed + m * jnp.exp(z * s - 0.5 * s2)

    def quantiles(self) -> tuple[Array, Array, Array]:
        """p50, p90, p99 (seconds)."""
        return tuple(self.quantile(z) for z in Z)

    def std(self) -> Array:
        """Standard deviation (seconds); 0 when nothing varies, with a finite derivative."""
        v = jnp.maximum(self.variance, 0.0)
        positive = v > 0.0  # double where, as in ``quantile``
        return jnp.where(positive, jnp.sqrt(jnp.where(positive, v, 1.0)), 0.0)


def uniform_variance(width: Array) -> Array:
    """Variance of a wait uniform on ``[0, width]``."""
    return width * width / 12.0


def queue_variance(mean_wait: Array, rho: Array) -> Array:
    """Variance of a queueing wait with mean ``mean_wait`` taken as 0 with probability
    ``1 - rho`` and exponential of mean ``mean_wait / rho`` otherwise: ``2 w^2 / rho - w^2``."""
    return jnp.maximum(safe_div(2.0 * mean_wait**2, rho, 0.0) - mean_wait**2, 0.0)


def inverse_output_mean(output_tokens: Array, output_cv: Array) -> Array:
    """``E[1/O]`` of a lognormal output length: ``(1 + cv^2) / E[O]``."""
    return safe_div(1.0 + output_cv**2, jnp.maximum(output_tokens, 1.0), 0.0)


def committed_tokens_variance(alpha: Array, k: Array) -> Array:
    """Variance of the tokens one speculative step commits when each of ``k`` drafts is
    accepted with probability ``alpha`` until the first rejection (``P(T >= j) = alpha^(j-1)``,
    ``j = 1 .. k + 1``): ``E[T^2] = sum (2j - 1) alpha^(j-1)``, ``E[T] = sum alpha^(j-1)``.
    0 without drafts and at ``alpha`` 0 or 1 (every step commits the same count)."""
    # Clipped below 1: the closed forms cancel catastrophically as alpha -> 1 (the variance
    # there tends to 0, which the where below returns at alpha = 1 exactly).
    a = jnp.clip(alpha, 0.0, 0.999)
    m = k
    s0 = (1.0 - a ** (m + 1.0)) / (1.0 - a)
    s1 = a * (1.0 - (m + 1.0) * a**m + m * a ** (m + 1.0)) / (1.0 - a) ** 2
    var = 2.0 * s1 + s0 - s0 * s0
    return jnp.where((k > 0) & (alpha < 1.0), jnp.maximum(var, 0.0), 0.0)


def ttft_spread(
    *,
    fixed: Array,
    mean: Array,
    own_prefill: Array,
    new_tokens_cv: Array,
    other_prompts: Array,
    prompt_cost: Array,
    iteration: Array,
    balance: Array,
    queue: Array,
    rho: Array,
) -> Spread:
    """TTFT as ``fixed`` (request path, hand-off) plus the random rest, whose mean is the
    model's ``mean - fixed``. Aggregated designs pass ``iteration``, ``other_prompts``,
    ``prompt_cost`` and ``balance`` (0 otherwise); disaggregated ones ``queue`` and ``rho``."""
    variance = (
        (own_prefill * new_tokens_cv) ** 2
        + other_prompts * prompt_cost**2
        + uniform_variance(iteration)
        + uniform_variance(2.0 * balance)
        + queue_variance(queue, rho)
    )
    return Spread(fixed, jnp.maximum(mean - fixed, 0.0), variance)


def tpot_spread(
    *,
    mean: Array,
    step_variance: Array,
    tau: Array,
    alpha: Array,
    k: Array,
    output_tokens: Array,
    output_cv: Array,
) -> Spread:
    """Per-request TPOT (its steps' mean over the tokens they commit) around the model's
    ``mean``: ``step_variance`` is one step's variance (s^2); a request of ``O`` tokens
    averages ``O / tau`` steps."""
    inv_o = inverse_output_mean(output_tokens, output_cv)
    t = jnp.maximum(tau, 1.0)
    from_steps = step_variance * inv_o / t  # Var(step) / n / tau^2 with n = O / tau
    # Delta method on step / mean(T): relative variance Var(T) / tau^2 / n.
    from_spec = mean**2 * committed_tokens_variance(alpha, k) / t**2 * inv_o * t
    return Spread(jnp.zeros_like(mean), mean, from_steps + from_spec)


def percentile_fields(ttft: Spread, tpot: Spread) -> dict[str, Array]:
    """The metrics' percentile fields in ms (``ttft_ms_p50`` ... ``tpot_ms_p99``), by name."""
    out = {}
    for name, spread in (("ttft_ms", ttft), ("tpot_ms", tpot)):
        for pct, q in zip(PERCENTILES, spread.quantiles()):
            out[f"{name}_p{pct}"] = q * 1e3
    return out


def prompt_share(served) -> Array:
    """Aggregated serving: one prompt's share of the iteration it is admitted in (the decode
    part is everyone's), seconds."""
    sv = served
    share = safe_div(sv.admitted - sv.decode_only, jnp.maximum(sv.prompts, 1.0), 0.0)
    return jnp.maximum(share, 0.0)


def own_prefill(served, disagg: Array) -> Array:
    """The mean request's own prefill inside its TTFT, seconds: its pass on the prefill pool
    (disaggregated) or its share of the iteration it is admitted in (aggregated)."""
    return jnp.where(disagg, served.prefill_alone, prompt_share(served))


def latency_spreads(
    served,
    new_tokens_cv: Array,
    output_tokens: Array,
    output_cv: Array,
    alpha: Array,
    k: Array,
    tau: Array,
    disagg: Array,
) -> tuple[Spread, Spread]:
    """(TTFT, TPOT) spreads of a system at its operating point ``served``
    (``system_solve.Served``): the parts listed in the module docstring."""
    sv = served
    zero = jnp.zeros_like(sv.ttft)
    prompt_cost = prompt_share(sv)
    own = own_prefill(sv, disagg)
    ttft = ttft_spread(
        fixed=sv.request + sv.handoff, mean=sv.ttft, own_prefill=own,
        new_tokens_cv=new_tokens_cv, other_prompts=jnp.where(disagg, zero, sv.prompts),
        prompt_cost=prompt_cost, iteration=jnp.where(disagg, zero, sv.agg_step.total),
        balance=sv.balance, queue=sv.prefill_queue, rho=sv.prefill_utilization,
    )  # fmt: skip
    step_variance = jnp.where(disagg, zero, sv.prompts * prompt_cost**2)
    tpot = tpot_spread(
        mean=sv.tpot, step_variance=step_variance, tau=tau, alpha=alpha, k=k,
        output_tokens=output_tokens, output_cv=output_cv,
    )  # fmt: skip
    return ttft, tpot


__all__ = [
    "latency_spreads",
    "own_prefill",
    "percentile_fields",
    "PERCENTILES",
    "Spread",
    "committed_tokens_variance",
    "queue_variance",
    "tpot_spread",
    "ttft_spread",
    "uniform_variance",
]
