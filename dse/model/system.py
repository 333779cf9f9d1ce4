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
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

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
from .layer import Segment, Setup
from .metrics import bound_code
from .numerics import expected_max_poisson, finite_or, safe_div
from .pools import Pools, decode_step, step_extras
from .precision import accuracy_penalty_pct
from .roofline import Cost, select_cost
from .speculation import expected_tokens_per_step, method_acceptance
from .step import forward_cost
from .system_design import SystemDesign
from .system_metrics import SYSTEM_REASONS, SystemMetrics
from .tiers import Restore, TierHits, restore_plan, tier_hits
from .workload import WorkloadProfile

# Utilization at which a disaggregated prefill pool is run (ASSUMPTION): an M/D/1 queue at
# rho = 0.8 waits 2 service times on average (DistServe §3, workloads.md §5), a common
# operating point; at 1.0 TTFT would diverge.
PREFILL_UTILIZATION = 0.8
# Illinois steps after the bracket [F(hi), hi]; measured on random designs (tests/model/
# test_system_properties.py) to leave |r - F(r)| below 1e-9 r.
ROOT_STEPS = 12


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

    # Fixed point: the request rate r the system sustains is F(r), the rate its pools reach
    # once r sets the hit rate and hence the prefill load. F never rises with r (more requests
    # through the same cache hit less and prefill more), so r = F(r) has one root in
    # [F(decode_rate), decode_rate]. Plain iteration of a decreasing map oscillates, and a few
    # passes were measured to leave throughput up to ~50 % off (even a 2-cycle), so the root is
    # bracketed and solved (``_rate_root``), on a copy of the pools that carries no derivative
    # (``_constant``) when derivatives are wanted: they are the implicit ones, added at the root
    # (``_at_root``).
    settle, decode_rate, dec = settler(p, k, tau)
    if derivatives:
        const = _constant(inputs)
        settle_const, decode_rate_const, _ = settler(Pools(*const), *const[-2:])
        root, _ = _rate_root(settle_const, decode_rate_const)
        rate, state = _at_root(settle, settle_const, root)
    else:
        rate, state = jax.lax.stop_gradient(_rate_root(settle, decode_rate))
    served = serve_at(p, k, tau, rate, state, dec)
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

    reason = _reason(p, sd, hw_decode, hw_prefill, hw_ffn)
    feasible = reason == 0.0
    bound = jnp.where(
        disagg & (prefill_rate * PREFILL_UTILIZATION < decode_rate), 4.0, bound_code(step_cost)
    )
    cached_tok_s = rate * isl * hits.total
    metrics = SystemMetrics(
        ttft_ms=ttft * 1e3,
        tpot_ms=tpot * 1e3,
        tok_s_user=safe_div(1.0, tpot),
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


def admitted_iteration(
    s: Setup, dec: Segment, prompts: Array, uncached: Array, past: Array
) -> Cost:
    """The engine iteration that admits ``max(prompts, 1)`` prompts of ``uncached`` new tokens
    (after ``past`` cached ones) beside the running decode segment ``dec``, without drafting:
    the iteration a new request's own prefill runs in (aggregated serving)."""
    n = jnp.maximum(prompts, 1.0)
    admitted = Segment(n, uncached, past, absorbed=False)
    return forward_cost(s, (dec, admitted), dec.tokens + n)


def mix_iterations(decode_only: Cost, with_prompts: Cost, prompts: Array) -> Cost:
    """Mean iteration cost when ``prompts`` prompts arrive per iteration on average.

    Below one prompt per iteration, most iterations decode only and a fraction ``prompts`` of
    them also prefill one whole (chunk of a) prompt. Averaging the prompt into every iteration
    instead (a fractional prompt) would be wrong where cost is not linear in tokens: an MoE
    iteration with 4 decode tokens touches ~12 % of DeepSeek's experts, one with a 8K-token
    prompt all of them (Jensen's inequality; the mean of the costs, not the cost of the mean).
    From one prompt per iteration on, every iteration admits ``prompts`` of them."""
    w = jnp.minimum(prompts, 1.0)
    return decode_only.scale(1.0 - w) + with_prompts.scale(w)


class Served(NamedTuple):
    """What a system serves at request rate ``rate`` once the prefill state has settled: the
    shared core of the search (``evaluate_system``, open loop) and of ``dse predict``'s fixed
    workloads (``serving.py``, which puts closed-loop benchmark clients on top)."""

    rate: Array  # requests/s
    hits: TierHits
    plan: Restore
    uncached: Array  # prompt tokens prefilled per request
    agg_step: Cost  # aggregated: the mean engine iteration (decode + admitted prompts)
    prefill_rate: Array  # disaggregated: requests/s of the prefill pool at full load
    prefill_batch: Array  # disaggregated: seconds of one batched prefill pass
    active: Array  # sequences decoding per worker (fewer than the batch when prefill limits)
    step: Cost  # the step that sets TPOT
    tpot: Array  # s
    prefill_utilization: Array  # rho of the prefill pool (0 aggregated)
    prefill_alone: Array  # s: one request's prefill, restores overlapped
    handoff: Array  # s: P/D KV hand-off (0 aggregated)
    prefill_queue: Array  # s: M/D/1 wait at the prefill pool (0 aggregated)
    request: Array  # s: the framework's host path to the first token
    ttft: Array  # s, open loop


def serve_at(p: Pools, k: Array, tau: Array, rate: Array, state, dec: Cost) -> Served:
    """TPOT and open-loop TTFT at ``rate`` with the prefill ``state`` that ``settle(rate)``
    returned (``settler``) and the full-batch decode step ``dec``."""
    hits, plan, uncached, agg_step, first, prefill_rate, prefill_batch = state
    sd, profile, batch, trace = p.sd, p.profile, p.batch, p.trace
    disagg = sd.prefill_units > 0 if trace.disagg is None else jnp.asarray(trace.disagg)
    osl = jnp.maximum(profile.output_tokens, 1.0)
    zero = jnp.zeros_like(rate)

    if trace.disagg is False:
        active, step_cost, rho = batch, agg_step, zero
        prefill_alone = handoff = queue = zero
    else:
        one = p.prefill_one(uncached)  # after the solve: the rate does not need it
        # Disaggregated and prefill-limited: fewer sequences decode at once, so steps are
        # faster.
        active = jnp.minimum(batch, safe_div(rate * osl * dec.total, tau * p.decode_workers))
        dec_active = decode_step(p, sd, jnp.maximum(active, 1e-9), k)
        step_cost = select_cost(disagg, dec_active, agg_step)
        rho = jnp.where(disagg, safe_div(rate, prefill_rate), 0.0)
        # TTFT: prefill of one request (restores overlap it layer by layer), KV hand-off, queue.
        prefill_alone = jnp.maximum(one.total, plan.seconds)
        queue = safe_div(rho, 2.0 * (1.0 - jnp.minimum(rho, 0.99))) * prefill_batch
        handoff = p.handoff_seconds
    ttft_disagg = prefill_alone + handoff + queue
    if trace.disagg is True:
        ttft_agg = zero
    else:
        # Aggregated: the request's prompt runs in an iteration with the running batch and the
        # other prompts admitted with it (``first``: ``admitted_iteration``), then half an
        # iteration passes on average before its first token is returned.
        ttft_agg = jnp.maximum(first.total, plan.seconds) + 0.5 * agg_step.total
    request = p.decode.rt.request_seconds(p.decode.design.framework)  # host path to 1st token
    return Served(
        rate=rate,
        hits=hits,
        plan=plan,
        uncached=uncached,
        agg_step=agg_step,
        prefill_rate=prefill_rate,
        prefill_batch=prefill_batch,
        active=jnp.where(disagg, active, batch),
        step=step_cost,
        tpot=step_cost.total / tau,
        prefill_utilization=rho,
        prefill_alone=jnp.where(disagg, prefill_alone, zero),
        handoff=jnp.where(disagg, handoff, zero),
        prefill_queue=jnp.where(disagg, queue, zero),
        request=request,
        ttft=jnp.where(disagg, ttft_disagg, ttft_agg) + request,
    )


def _prompts_per_iteration(p: Pools, seg: Segment, tau: Array) -> Array:
    """Prompts the busiest DP rank admits per iteration (Little's law: finished sequences are
    replaced). With MoE every DP rank waits for the busiest one in each step's all-to-all, so
    the expected maximum of Poisson arrivals over the ranks; dense DP replicas run alone."""
    osl = jnp.maximum(p.profile.output_tokens, 1.0)
    synced = jnp.where(p.arch.num_experts > 0, p.sd.dp, 1.0)
    return expected_max_poisson(seg.seqs * tau / osl, synced)


def settler(p: Pools, k: Array, tau: Array, prefill_utilization: float = PREFILL_UTILIZATION):
    """``settle(rate) -> (F(rate), what prefill looks like at that rate)`` for the pools ``p``,
    plus the decode-only rate (F's upper bound) and the decode step. The per-token recompute
    cost that decides restore vs recompute is taken at the workload's new tokens (ASSUMPTION: a
    marginal cost, so that F depends on r alone)."""
    profile, sd, trace = p.profile, p.sd, p.trace
    disagg = sd.prefill_units > 0 if trace.disagg is None else jnp.asarray(trace.disagg)
    osl = jnp.maximum(profile.output_tokens, 1.0)
    isl = profile.input_tokens
    batch = p.batch
    extras = step_extras(p, sd, p.decode_segment(batch, k), k)
    dec = decode_step(p, sd, batch, k, extras=extras)
    decode_rate = safe_div(p.decode_workers * batch * tau, dec.total * osl)
    if trace.tiers:
        recompute_s = safe_div(p.prefill_one(profile.new_tokens).total, profile.new_tokens, 1e-3)

    def settle(rate):
        hits = tier_hits(profile.cache_grid, profile.hit_curve, p.capacities, rate, sd.prompt_cache)
        if trace.tiers:
            plan = restore_plan(
                hits, isl, p.kv_bytes_per_token, p.host_bandwidth, p.storage_bandwidth,
                recompute_s, rate, p.host_link_total, p.storage_link_total,
            )  # fmt: skip
        else:  # no lower tier: every hit is in HBM, nothing to restore
            zero = jnp.zeros_like(rate)
            plan = Restore(zero, zero, zero, zero)
        uncached = jnp.clip(isl * (1.0 - hits.total) + plan.recompute_tokens, 1.0, isl)
        # Only the traced serving mode's prefill is costed; the other's slot holds the decode
        # step (a placeholder that ``where`` never selects).
        if trace.disagg is False:
            prefill_rate, prefill_batch = jnp.zeros_like(rate), jnp.zeros_like(rate)
        else:
            prefill_rate, prefill_batch = p.prefill_throughput(uncached)
        if trace.disagg is True:
            agg_step = first = dec
        else:
            agg_step, first = _agg_iteration(p, sd, batch, k, tau, uncached, dec, extras)
        agg_rate = safe_div(p.decode_workers * batch * tau, agg_step.total * osl)
        rate = jnp.where(
            disagg, jnp.minimum(decode_rate, prefill_utilization * prefill_rate), agg_rate
        )
        return rate, (hits, plan, uncached, agg_step, first, prefill_rate, prefill_batch)

    return settle, decode_rate, dec


def _constant(tree):
    """``tree`` with every array leaf cut from differentiation (``stop_gradient``): the root
    solve traced on it carries no tangents, so under ``jacfwd`` it stays one plain loop instead
    of forward-mode copies of every iteration (measured on 2 CPU cores: the Jacobian program of
    8 designs compiled in 75 s instead of 152 s and ran in 22 ms instead of 230 ms)."""
    return jax.tree.map(lambda a: jax.lax.stop_gradient(a) if hasattr(a, "dtype") else a, tree)


def _at_root(settle, settle_const, root: Array):
    """The rate and the prefill state at the solver's ``root``, with implicit derivatives.

    Values are those at ``root``. Derivatives: F's partials in the design at fixed r come from
    ``settle`` (pools that carry tangents); dF/dr and d(state)/dr from one forward-mode pass of
    ``settle_const`` in r. Then dr/dθ = (∂F/∂θ) / (1 - ∂F/∂r) (the implicit function theorem
    on g(r) = r - F(r); g' >= 1 as F never rises) and each state's total derivative is
    ∂s/∂θ + ∂s/∂r dr/dθ. ``delta`` is exactly 0 in value and carries dr/dθ as its tangent.
    (A ``jax.custom_jvp`` around the solve was tried: it traces the pools twice more with
    tangents and compiled in 162 s.)"""
    rate_fixed, state = settle(root)
    _, (slope_f, state_r) = jax.jvp(settle_const, (root,), (jnp.ones_like(root),))
    g = root - rate_fixed  # ~0 in value; its tangent is -∂F/∂θ
    delta = -(g - jax.lax.stop_gradient(g)) / jnp.maximum(1.0 - slope_f, 1.0)
    state = jax.tree.map(lambda s, ds: s + ds * delta, state, state_r)
    return root + delta, state


def _rate_root(settle, hi: Array):
    """The root r* of g(r) = r - F(r) in [F(hi), hi], where F(r) = ``settle(r)[0]`` never rises
    with r (so g is increasing, g' = 1 - F' >= 1, and F(r) <= hi for every r), and the state
    ``settle(r*)[1]`` there.

    Illinois false position (a secant step kept inside the bracket; the endpoint retained twice
    has its g halved, so convergence stays superlinear) for ``ROOT_STEPS`` steps, without
    derivatives (``_at_root`` adds the implicit one). Where F jumps, e.g. a tier switching
    between restore and recompute, the root is only bracketed: |r - F(r)| ~ 1e-7 r was seen.
    Steps 0 and 1 evaluate the bracket's ends (g(hi), giving lo = F(hi), then g(lo)) inside the
    loop, and each end carries its state: F, most of the model, is traced and compiled once.
    """

    def step(i, c):
        (lo, g_lo, s_lo), (hi, g_hi, s_hi), side = c
        secant = jnp.clip(hi - safe_div(g_hi * (hi - lo), g_hi - g_lo, 0.0), lo, hi)
        x = jnp.where(i == 0, hi, jnp.where(i == 1, lo, secant))
        rate, s_x = settle(x)
        gx = x - rate
        above = gx > 0.0  # the root is below x: x becomes hi
        g_lo = jnp.where(above & (side > 0), 0.5 * g_lo, g_lo)  # lo kept twice: Illinois
        g_hi = jnp.where(~above & (side < 0), 0.5 * g_hi, g_hi)
        first = ((rate, g_lo, s_lo), (hi, gx, s_x), side)  # lo = F(hi)
        second = ((lo, gx, s_x), (hi, g_hi, s_hi), side)
        new = _where(above, ((lo, g_lo, s_lo), (x, gx, s_x), 1.0),
                     ((x, gx, s_x), (hi, g_hi, s_hi), -1.0))  # fmt: skip
        return _where(i == 0, first, _where(i == 1, second, new))

    zero = jnp.zeros_like(hi)
    blank = jax.tree.map(jnp.zeros_like, jax.eval_shape(lambda: settle(hi)[1]))
    init = ((hi, zero, blank), (hi, zero, blank), zero)
    (lo, g_lo, s_lo), (hi, g_hi, s_hi), _ = jax.lax.fori_loop(0, ROOT_STEPS + 2, step, init)
    return _where(-g_lo < g_hi, (lo, s_lo), (hi, s_hi))  # the end nearer zero


def _where(cond: Array, a, b):
    return jax.tree.map(lambda x, y: jnp.where(cond, x, y), a, b)


def _agg_iteration(
    p: Pools,
    sd: SystemDesign,
    batch: Array,
    k: Array,
    tau: Array,
    uncached: Array,
    decode_only: Cost,
    extras: tuple,
):
    """Aggregated serving: one engine step decodes the running batch and prefills the prompts
    of the requests that replace finished ones (Little's law; chunked prefill). With MoE every
    DP rank waits for the busiest one (expected maximum of Poisson arrivals). Below one prompt
    per iteration the mean is a mixture of decode-only iterations and iterations with one
    whole prompt (``mix_iterations``), not a fractional prompt in every iteration. Also returns
    the iteration with prompts without drafting (``admitted_iteration``): the one a new
    request's prefill runs in (its TTFT)."""
    seg = p.decode_segment(batch, k)
    prompts = _prompts_per_iteration(p, seg, tau)
    past = p.profile.input_tokens - uncached
    first = admitted_iteration(p.decode, seg, prompts, uncached, past)
    admitted = Segment(jnp.maximum(prompts, 1.0), uncached, past, absorbed=False)
    with_prompts = decode_step(p, sd, batch, k, extra=admitted, plain=first, extras=extras)
    return mix_iterations(decode_only, with_prompts, prompts), first


def _divides(d: Array, n: Array) -> Array:
    """Whether ``d`` is a whole number >= 1 that divides ``n`` (float64 fields holding whole
    numbers; a comparison only, so no gradient flows through it)."""
    safe_d = jnp.maximum(d, 1.0)
    r = jnp.mod(n, safe_d)
    tol = 1e-9 * jnp.maximum(jnp.abs(n), 1.0)
    whole = jnp.abs(d - jnp.round(d)) <= 1e-9 * safe_d
    return (d >= 1.0) & whole & (jnp.minimum(r, safe_d - r) <= tol)


def _layout_checks(
    p: Pools, sd: SystemDesign, hw_decode: Hardware, hw_prefill: Hardware, hw_ffn: Hardware
) -> list[tuple[Array, float]]:
    """Parallel layouts that are inconsistent with the model or the hardware, as (ok, code).

    The rules mirror ``dse.scenarios.schema.parse_row`` (which rejects such ``dse predict``
    rows); here they are per-point reasons, so a sweep over tp = 1..16 still runs for a
    40-head model and marks the bad points. Decisions (what is impossible vs merely slow):

    * Heads / MLP widths: GPU engines (vLLM, SGLang, TRT-LLM) shard whole attention heads and
      whole intermediate columns, so tp | heads and ffn_tp | intermediate size are required.
      SRAM-first chips (``sram_first``; Groq) are compiler-scheduled and split tensors at any
      granularity (dse/model/sram.py; the shipped vr200_lpx_decode runs tp=48 over Kimi-K2's 64
      heads), so these two rules apply to GPU pools only (ASSUMPTION).
    * EP (MoE only): experts are laid over the tp*dp ranks of a stage (``Design.moe_tp =
      tp*dp/ep``, layer.moe_experts), so ep must divide tp*dp and not exceed the routed
      experts. A dense model ignores ep (num_moe_layers = 0 and experts_per_token = 0 zero
      every expert term), so ep > 1 there changes no number and is not a reason (the shipped
      NVL72 system configs set ep = 8 for every model). Uneven expert placement (384 / 48)
      is realizable and not a reason (as parse_row).
    * pp / ffn_pp > layers: a stage with no layer. Uneven layers per stage are modelled as the
      average and are legal (as parse_row).
    * Whole workers: ``Pools.decode_workers = decode_units / (tp*pp*dp)`` and the prefill
      throughput use fractional worker counts (no rounding anywhere), so a pool that is not a
      whole number of workers would be credited with a fraction of a worker's throughput while
      paying for every unit: a reason. The FFN pool is one group of all its chips (every
      attention worker shares it, dse/model/afd.py); uneven chips per layer group
      (ffn_units / ffn_pp) are realizable and not a reason, but its EP degree per group
      (``Pools.ffn.design.ep``) must not exceed the experts.
    * Scale-up domain: a TP all-reduce, EP all-to-all or PP hop whose group is larger than
      ``scaleup_domain`` is charged scale-out bandwidth and latency (collectives.all_reduce_time:
      hierarchical, ``domains = group / min(group, domain)``; moe_all_to_all_time;
      step.forward_cost's ``send_recv_time`` crossing flag), so tp*pp*dp > domain is slow but
      legal. It is impossible only where the accelerator has no scale-out network
      (``scaleout_bandwidth`` 0, e.g. groq_lpu): there ``safe_div(bytes, 0)`` would make the
      spill, the P/D KV hand-off and the attention-FFN link free, so those are reasons.
    """
    r = SYSTEM_REASONS
    a = p.arch
    heads, layers, experts = a.num_attention_heads, a.num_layers, a.num_experts
    is_moe = experts > 0
    disagg, afd = p.disagg, p.afd
    gpu_d, gpu_p, gpu_f = (
        hw_decode.sram_first <= 0,
        hw_prefill.sram_first <= 0,
        hw_ffn.sram_first <= 0,
    )
    ffn_widths_ok = jnp.where(
        is_moe,
        _divides(sd.ffn_tp, a.moe_intermediate_size)
        & ((a.num_mlp_dense_layers <= 0) | _divides(sd.ffn_tp, a.intermediate_size)),
        _divides(sd.ffn_tp, a.intermediate_size),
    )
    nic_d = hw_decode.scaleout_bandwidth > 0
    nic_p = hw_prefill.scaleout_bandwidth > 0
    nic_f = hw_ffn.scaleout_bandwidth > 0
    scaleout_ok = (
        (nic_d | (sd.decode_worker <= hw_decode.scaleup_domain))
        & (~disagg | (nic_d & nic_p))
        & (~afd | (nic_d & nic_f))
    )
    return [
        (_divides(sd.decode_worker, sd.decode_units), r["decode_units_not_whole_workers"]),
        (
            ~disagg | _divides(sd.prefill_worker, sd.prefill_units),
            r["prefill_units_not_whole_workers"],
        ),
        (~gpu_d | _divides(sd.tp, heads), r["tp_not_dividing_heads"]),
        (~disagg | ~gpu_p | _divides(sd.prefill_tp, heads), r["prefill_tp_not_dividing_heads"]),
        (sd.pp <= layers, r["pp_exceeds_layers"]),
        (~is_moe | (sd.ep <= experts), r["ep_exceeds_experts"]),
        (~is_moe | _divides(sd.ep, sd.tp * sd.dp), r["ep_not_dividing_tp_dp"]),
        (~disagg | ~is_moe | (sd.prefill_ep <= experts), r["prefill_ep_exceeds_experts"]),
        (
            ~disagg | ~is_moe | _divides(sd.prefill_ep, sd.prefill_tp * sd.prefill_dp),
            r["prefill_ep_not_dividing_tp_dp"],
        ),
        (~afd | (sd.ffn_pp <= layers), r["ffn_pp_exceeds_layers"]),
        (~afd | ~gpu_f | ffn_widths_ok, r["ffn_tp_not_dividing_mlp"]),
        (~afd | ~is_moe | (p.ffn.design.ep <= experts), r["ffn_ep_exceeds_experts"]),
        (scaleout_ok, r["needs_scaleout_network"]),
    ]


def _reason(
    p: Pools,
    sd: SystemDesign,
    hw_decode: Hardware,
    hw_prefill: Hardware,
    hw_ffn: Hardware,
) -> Array:
    """The first thing that makes this system infeasible, as a SYSTEM_REASONS code (pool sizes,
    then the parallel layout, then memory and tiers). Codes are constants chosen by boolean
    checks, so the reason carries no gradient and cannot put NaN into one."""
    r = SYSTEM_REASONS
    checks = [
        (p.units_ok, r["pool_smaller_than_worker"]),
        ((sd.ffn_units <= 0) | (sd.prefill_units > 0), r["afd_needs_prefill_pool"]),
        *_layout_checks(p, sd, hw_decode, hw_prefill, hw_ffn),
        (p.decode_weights_fit, r["weights_exceed_memory"]),
        (p.max_batch >= 1.0, r["no_sequence_fits"]),
        (p.max_context_fits, r["context_exceeds_memory"]),
        (p.ffn_fits, r["ffn_pool_too_small"]),
        (p.prefill_fits, r["prefill_pool_too_small"]),
        (sd.host_gb_per_gpu <= p.host.gb_per_gpu, r["host_memory_exceeded"]),
    ]
    reason = jnp.asarray(0.0)
    for ok, code in reversed(checks):
        reason = jnp.where(ok, reason, code)
    return reason
