"""A co-designed serving system for a workload → interactivity, throughput, hit rate, $ / Mtok.

``evaluate_system`` is one pure function of one :class:`SystemDesign` (vmap/jit it):

1. **Decode** (``pools.decode_step``): the decode pool's step for ``batch`` sequences per
   worker at the workload's decode context, on GPUs or SRAM-first chips, optionally with the
   FFN half on another pool (AFD), verifying ``k`` drafts and committing ``tau`` tokens.
2. **Cache** (``tiers``): capacities of the HBM left free by the prefill-running pool, host
   memory and context storage give the hit rate at the request rate through the workload's
   LRU hit curve; lower-tier hits are restored (hidden under the prefill where it is longer)
   or recomputed, whichever ends sooner, and what a tier's link cannot carry is recomputed.
3. **Prefill**: the uncached tokens per request (new + misses + recomputed) are prefilled on
   the prefill pool (disaggregated; rate-matched, run at ``PREFILL_UTILIZATION`` so its M/D/1
   queue stays finite) or inside the decode pool's steps (aggregated, chunked prefill).
   Hit rate, request rate and prefill load depend on each other: the rate is the root of
   r = F(r), bracketed and solved (Illinois false position), differentiated implicitly.
4. **Money and power** (``cost``): pools, tiers, $/Mtok split by phase, $ per session.
5. **Latency spreads and sessions**: TTFT/TPOT percentiles (``tails``) and the wall time of an
   agent session along its critical path (``session_time``).

This file assembles the metrics; the solve for the operating point (steps 2-3) is
``system_solve.py`` and the feasibility rules, each with its code from ``reasons.py``, are
``system_feasibility.py``.
"""

from __future__ import annotations

import jax.numpy as jnp

from .architecture import Architecture
from .cost import (
    HOURS_PER_YEAR,
    CostParams,
    accelerator_pool_cost,
    capital_recovery_per_year,
    memory_tier_cost,
)
from .efficiency import Efficiency, Runtime
from .hardware import Hardware, HostTier
from .metrics import bound_code
from .numerics import finite_or, safe_div
from .pools import Pools
from .precision import accuracy_penalty_pct
from .session_time import request_latency, session_fields
from .speculation import expected_tokens_per_step, method_acceptance
from .system_design import SystemDesign
from .system_feasibility import infeasibility_reason
from .system_metrics import SystemMetrics
from .system_solve import PREFILL_UTILIZATION, operating_point
from .tails import latency_spreads, own_prefill, percentile_fields
from .workload import WorkloadProfile


def evaluate_system(
    arch: Architecture,
    hw_decode: Hardware,
    hw_prefill: Hardware,
    hw_ffn: Hardware,
    host: HostTier,
    eff: Efficiency,
    rt: Runtime,
    cost: CostParams,
    profile: WorkloadProfile,
    sd: SystemDesign,
    *,
    derivatives: bool = True,
) -> SystemMetrics:
    """``derivatives=False`` leaves out the implicit-derivative pass at the rate's root: the
    values are the same, but derivatives through the rate are then zero (for forward sweeps;
    ``jax.grad``/``jacfwd`` need the default)."""
    alpha = method_acceptance(sd.spec_method, profile.spec_acceptance)
    k = jnp.where(sd.spec_method > 0, sd.spec_k, 0.0)
    tau = expected_tokens_per_step(alpha, k)
    inputs = (arch, hw_decode, hw_prefill, hw_ffn, host, eff, rt, profile, sd, k, tau)
    p = Pools(*inputs)
    disagg = sd.prefill_units > 0
    osl = jnp.maximum(profile.output_tokens, 1.0)
    isl = profile.input_tokens

    served, decode_rate, dec = operating_point(inputs, p, derivatives=derivatives)
    rate = served.rate
    hits, plan, uncached, agg_step = served.hits, served.plan, served.uncached, served.agg_step
    prefill_rate, rho, active = served.prefill_rate, served.prefill_utilization, served.active
    batch = p.batch
    step_cost = served.step
    tpot = served.tpot
    ttft = served.ttft

    # Money and power.
    pool_d = accelerator_pool_cost(hw_decode, sd.decode_units, jnp.ones_like(rho), cost)
    pool_p = accelerator_pool_cost(hw_prefill, sd.prefill_units, rho, cost)
    pool_f = accelerator_pool_cost(hw_ffn, sd.ffn_units, jnp.ones_like(rho), cost)
    tier = memory_tier_cost(jnp.zeros_like(rho), sd.storage_tb, cost, sd.storage_gbs)
    usd_h = pool_d.total_usd_h + pool_p.total_usd_h + pool_f.total_usd_h + tier.total_usd_h
    owned = pool_d + pool_p + pool_f + tier
    capex_usd = safe_div(
        (owned.capex_usd_h + owned.network_usd_h) * HOURS_PER_YEAR, capital_recovery_per_year(cost)
    )
    power_w = pool_d.power_w + pool_p.power_w + pool_f.power_w + tier.power_w
    out_tok_s = rate * osl
    # Aggregated: the decode pool's time is split between decoding and the prefill it hosts.
    decode_share = jnp.where(disagg, 1.0, jnp.clip(safe_div(dec.total, agg_step.total), 0.0, 1.0))
    usd_h_decode = (pool_d.total_usd_h + pool_f.total_usd_h) * decode_share
    # Prefill pool: its busy share (rho) is the cost of the uncached tokens; idle capacity stays in
    # the blended usd_per_mtok only.
    usd_h_prefill = pool_p.total_usd_h * rho + pool_d.total_usd_h * (1.0 - decode_share)
    mtok_h = 3600.0 / 1e6

    reason = infeasibility_reason(p, sd, hw_decode, hw_prefill, hw_ffn)
    feasible = reason == 0.0
    bound = jnp.where(
        disagg & (prefill_rate * PREFILL_UTILIZATION < decode_rate), 4.0, bound_code(step_cost)
    )
    cached_tok_s = rate * isl * hits.total
    ttft_spread, tpot_spread = latency_spreads(
        served, profile.new_tokens_cv, osl, profile.output_cv, alpha, k, tau, disagg
    )
    prefill = own_prefill(served, disagg)
    ttft_sd, tpot_sd = ttft_spread.std(), tpot_spread.std()
    latency = request_latency(
        ttft, prefill, ttft_sd, tpot, tpot_sd, profile.new_tokens, profile.new_tokens_cv
    )
    percentiles = percentile_fields(ttft_spread, tpot_spread)
    metrics = SystemMetrics(
        ttft_ms=ttft * 1e3,
        tpot_ms=tpot * 1e3,
        **percentiles,
        ttft_ms_sd=ttft_sd * 1e3,
        tpot_ms_sd=tpot_sd * 1e3,
        prefill_ms=prefill * 1e3,
        **session_fields(profile, latency, latency),
        tok_s_user=safe_div(1.0, tpot),
        tok_s_user_p99=safe_div(1e3, percentiles["tpot_ms_p99"]),
        output_tok_s=out_tok_s,
        tok_s_per_unit=safe_div(out_tok_s, sd.units),
        input_tok_s=rate * isl,
        requests_s=rate,
        # Little's law: each request cycle (wait, decode, tool/think gap) of a session's
        # agents_in_flight parallel agents keeps one session busy.
        sessions=rate
        * (ttft + osl * tpot + profile.gap_s)
        / jnp.maximum(profile.agents_in_flight, 1.0),
        hit_rate=hits.total,
        hit_hbm=hits.hbm,
        hit_host=hits.host,
        hit_storage=hits.storage,
        uncached_tokens=uncached,
        restore_ms=plan.seconds * 1e3,
        units=sd.units,
        decode_batch=jnp.where(disagg, active, batch),
        max_batch=p.max_batch,
        prefill_utilization=rho,
        usd_per_hour=usd_h,
        usd_per_unit_hour=safe_div(usd_h, sd.units),
        capex_usd=capex_usd,
        power_kw=power_w / 1e3,
        usd_per_mtok=safe_div(usd_h, out_tok_s * mtok_h),
        usd_per_mtok_output=safe_div(usd_h_decode, out_tok_s * mtok_h),
        usd_per_mtok_uncached=safe_div(usd_h_prefill, rate * uncached * mtok_h),
        usd_per_mtok_cached=safe_div(tier.total_usd_h, cached_tok_s * mtok_h),
        usd_per_session=safe_div(usd_h / 3600.0 * profile.requests_per_session, rate),
        tok_s_per_mw=safe_div(out_tok_s, power_w / 1e6),
        accuracy_penalty_pct=accuracy_penalty_pct(sd.weight_bits, sd.act_bits, sd.kv_bits),
        feasible=feasible.astype(jnp.float64),
        reason=reason,
        bound=bound,
        compute_s=step_cost.compute,
        memory_s=step_cost.memory,
        network_s=step_cost.network,
        overhead_s=step_cost.overhead,
    )
    return SystemMetrics(
        *[finite_or(getattr(metrics, f), 0.0) for f in metrics.__dataclass_fields__]
    )
