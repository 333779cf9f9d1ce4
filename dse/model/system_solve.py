"""The system's operating point: the request rate a design sustains is the root of r = F(r)
(its pools' rate once r sets the hit rate and hence the prefill load), bracketed and solved by
Illinois false position and differentiated implicitly; ``serve_at`` gives everything the
metrics need at that rate (hits, restores, prefill load, decode step, TPOT, TTFT).

Used by ``system.evaluate_system`` (the search) and ``fixed_workload`` (``dse predict`` rows),
so both paths serve the same way.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

from .efficiency import FRAMEWORKS
from .layer import Segment, Setup
from .numerics import expected_max_poisson, safe_div
from .pools import Pools, decode_step, step_extras
from .roofline import Cost, select_cost
from .step import forward_cost
from .system_design import SystemDesign
from .tiers import Restore, TierHits, restore_plan, tier_hits

# Utilization at which a disaggregated prefill pool is run (ASSUMPTION): an M/D/1 queue at
# rho = 0.8 waits 2 service times on average (DistServe §3, workloads.md §5), a common
# operating point; at 1.0 TTFT would diverge.
PREFILL_UTILIZATION = 0.8
# Illinois steps after the bracket [F(hi), hi]; measured on random designs (tests/model/
# test_system_properties.py) to leave |r - F(r)| below 1e-9 r.
ROOT_STEPS = 12


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
    balance: Array  # s: TensorRT-LLM's attention-DP hold, mean (in ttft; 0 otherwise)
    prompts: Array  # prompts admitted per aggregated iteration (0 disaggregated)
    admitted: Array  # s: the aggregated iteration a request's prompt runs in
    decode_only: Array  # s: the decode step without prompts


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
        ttft_agg = balance = prompts = zero
    else:
        # Aggregated: the request's prompt runs in an iteration with the running batch and the
        # other prompts admitted with it (``first``: ``admitted_iteration``), then half an
        # iteration passes on average before its first token is returned.
        balance = balance_wait(p, rate, agg_step.total)
        ttft_agg = jnp.maximum(first.total, plan.seconds) + 0.5 * agg_step.total + balance
        prompts = _prompts_per_iteration(p, p.decode_segment(batch, k), tau)
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
        balance=jnp.where(disagg, zero, balance),
        prompts=jnp.where(disagg, zero, prompts),
        admitted=jnp.maximum(first.total, plan.seconds),
        decode_only=dec.total,
    )


def balance_wait(p: Pools, rate: Array, iteration: Array) -> Array:
    """Mean time a prompt is held by TensorRT-LLM's attention-DP balance before it is scheduled
    (aggregated serving, ``dp`` > 1; other frameworks schedule at once).

    With ``enable_balance`` the scheduler holds context requests until every DP rank of the
    worker has one, so that no rank's prefill stalls the others' decode in the step's
    collectives, and gives up after ``adp_timeout_iters`` iterations; then it waits
    ``adp_batching_wait_iters`` more to batch them (TRT-LLM ``GlobalCoordinator``'s batching
    filter). It holds nothing while some rank has no running sequence. Arrivals (rate/worker,
    Poisson) are spread over the ranks one each, so a round closes after ``dp`` arrivals,
    ``(dp - 1) / rate`` after the first, or at the timeout; a prompt arrives uniformly inside
    its round and waits half of it on average (ASSUMPTION: the water-filling assignment puts a
    new prompt on a rank without one, as its score's context-request penalty intends)."""
    d, rt = p.decode.design, p.decode.rt
    per_worker = safe_div(rate, p.decode_workers)
    gather = safe_div(d.dp - 1.0, per_worker, 0.0)
    held = 0.5 * jnp.minimum(gather, rt.adp_timeout_iters * iteration)
    wait = held + rt.adp_batching_wait_iters * iteration
    on = (d.framework == FRAMEWORKS.index("trtllm")) & (d.dp > 1.0) & (p.batch >= d.dp)
    return jnp.where(on, wait, 0.0)


def _prompts_per_iteration(p: Pools, seg: Segment, tau: Array) -> Array:
    """Prompts the busiest DP rank admits per iteration (Little's law: finished sequences are
    replaced). With MoE every DP rank waits for the busiest one in each step's all-to-all, so
    the expected maximum of Poisson arrivals over the ranks; dense DP replicas run alone."""
    osl = jnp.maximum(p.profile.output_tokens, 1.0)
    synced = jnp.where(p.arch.num_experts > 0, p.sd.dp, 1.0)
    return expected_max_poisson(seg.seqs * tau / osl, synced)


def operating_point(
    inputs: tuple, p: Pools, *, derivatives: bool = True
) -> tuple[Served, Array, Cost]:
    """(what the system serves at the request rate it sustains, ``Served.rate``; the decode
    pool's own rate; the decode-only step) for ``p = Pools(*inputs)``. ``derivatives=False``:
    the values are the same but the rate carries no derivative (forward sweeps)."""
    # Fixed point: the request rate r the system sustains is F(r), the rate its pools reach
    # once r sets the hit rate and hence the prefill load. F never rises with r (more requests
    # through the same cache hit less and prefill more), so r = F(r) has one root in
    # [F(decode_rate), decode_rate]. Plain iteration of a decreasing map oscillates, and a few
    # passes were measured to leave throughput up to ~50 % off (even a 2-cycle), so the root is
    # bracketed and solved (``_rate_root``), on a copy of the pools that carries no derivative
    # (``_constant``) when derivatives are wanted: they are the implicit ones, added at the root
    # (``_at_root``).
    k, tau = inputs[-2:]
    settle, decode_rate, dec = settler(p, k, tau)
    if derivatives:
        const = _constant(inputs)
        settle_const, decode_rate_const, _ = settler(Pools(*const), *const[-2:])
        root, _ = _rate_root(settle_const, decode_rate_const)
        rate, state = _at_root(settle, settle_const, root)
    else:
        rate, state = jax.lax.stop_gradient(_rate_root(settle, decode_rate))
    return serve_at(p, k, tau, rate, state, dec), decode_rate, dec


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
                host_latency=p.host_restore_latency,
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
