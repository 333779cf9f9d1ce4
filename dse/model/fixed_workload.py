"""A serving instance as a system: one model path for ``dse predict``, calibration and search.

A ``dse predict`` / calibration row (:class:`Design`: one replica, every request ``isl`` in and
``osl`` out, a resident ``prefix``) is the system model's :class:`SystemDesign` on a
*fixed-length workload*: a :class:`WorkloadProfile` whose every request has the same lengths
and whose prompt-cache hit rate is ``prefix / isl`` at any load (the benchmark's shared prefix
stays resident in HBM). The step costs, the aggregated iteration mixture, the
disaggregated rate matching, the P/D hand-off and the TTFT parts are then the very functions
the search evaluates (``system.serve_at``); ``serving.py`` only puts the benchmark's
closed-loop clients on top (a fixed concurrency instead of an open-loop request rate).

With a hit rate that does not depend on the load (``F(r)`` is constant), one ``settle`` call
is the root ``evaluate_system`` solves for; ``tests/model/
test_fixed_workload.py`` checks both give the same metrics on random designs.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array

from .architecture import Architecture
from .design import Design
from .efficiency import Efficiency, Runtime
from .hardware import Hardware, HostTier
from .numerics import safe_div
from .pools import Pools, Trace
from .system_design import INDEX_FIELDS, SYSTEM_DEFAULTS, SystemDesign
from .system_solve import PREFILL_UTILIZATION, Served, serve_at, settler
from .workload import (
    CACHE_GRID_TOKEN_S,
    WorkloadProfile,
    context_p99,
    mean_decode_context,
    single_call_sessions,
)


def fixed_profile(
    isl: Array,
    osl: Array,
    prefix: Array,
    acceptance: Array,
    *,
    isl_cv: Array | float = 0.0,
    osl_cv: Array | float = 0.0,
    length_corr: Array | float = 0.0,
) -> WorkloadProfile:
    """Requests of mean ``isl`` in and ``osl`` out, their first ``prefix`` tokens cached: a shared
    prompt that every request re-references stays the most recently used entry of an LRU cache
    and needs only its own few tokens of room, so the hit rate is ``prefix / isl`` at any cache
    size and any load (the capacity-per-rate curve describes reuse across sessions, not one hot
    prefix);
    ``acceptance`` holds the per-token draft acceptance of [MTP, draft model, n-gram]. One
    request per session, no gap, no sub-agents. ``isl_cv``, ``osl_cv`` and ``length_corr``
    describe how the lengths vary around those means (a benchmark dataset's spread; 0 = every
    request the same): they set the output-weighted decode context and the p99 context
    (``workload.mean_decode_context``, ``workload.context_p99``). Prefill is priced at the mean
    prompt: its attention term, the only one not linear in the prompt length, is under 5 % of
    prefill FLOPs at the MLPerf sets' prompt lengths. (``dse.workload.fixed_length_profile`` is
    this with its inputs checked.)"""
    osl = jnp.maximum(osl, 1.0)
    prefix = jnp.clip(prefix, 0.0, isl)
    hit = safe_div(prefix, jnp.maximum(isl, 1.0), 0.0)
    one, zero = jnp.ones_like(isl), jnp.zeros_like(isl)
    grid = jnp.asarray(CACHE_GRID_TOKEN_S)
    return WorkloadProfile(
        input_tokens=isl,
        output_tokens=osl,
        new_tokens=jnp.maximum(isl - prefix, 1.0),
        reusable_fraction=hit,
        prefill_past=prefix,
        decode_context=mean_decode_context(isl, osl, isl_cv, osl_cv, length_corr),
        max_context=context_p99(isl, osl, isl_cv, osl_cv, length_corr),
        # A fixed prefix: what varies is the uncached rest of the prompt.
        new_tokens_cv=safe_div(isl * isl_cv, jnp.maximum(isl - prefix, 1.0), 0.0),
        output_cv=jnp.zeros_like(isl) + osl_cv,
        gap_s=zero,
        requests_per_session=one,
        session_input_tokens=isl,
        session_output_tokens=osl,
        agents_in_flight=one,
        sub_agent_input_fraction=zero,
        sub_agent_output_fraction=zero,
        spec_acceptance=jnp.asarray(acceptance),
        cache_grid=grid,
        hit_curve=jnp.full(grid.shape, hit),
        **single_call_sessions(jnp.maximum(isl - prefix, 1.0), osl, jnp.zeros_like(isl) + osl_cv),
    )


def fixed_workload(design: Design, acceptance: Array) -> WorkloadProfile:
    """The fixed-length workload of a ``dse predict`` row; ``acceptance``: the per-token draft
    acceptance of every speculation method."""
    d = design
    return fixed_profile(
        d.isl, d.osl, d.prefix, jnp.stack([acceptance] * 3),
        isl_cv=d.isl_cv, osl_cv=d.osl_cv, length_corr=d.length_corr,
    )  # fmt: skip


def prefill_layout(design: Design) -> tuple[Array, Array, Array]:
    """(tp, dp, ep) of the prefill workers of a disaggregated instance: workers in the decode
    worker's style (DEP stays DEP, TP stays TP), no larger than a decode worker and no larger
    than the prefill pool (``prefill_gpus`` smaller than a decode worker shrinks DP first)."""
    d = design
    worker = d.tp * d.dp
    gpus = jnp.maximum(d.prefill_gpus, 1.0)
    scale = jnp.clip(safe_div(gpus, worker, 1.0), 1e-9, 1.0)
    dp = jnp.where(d.dp > 1.0, jnp.maximum(d.dp * scale, 1.0), 1.0)
    tp = jnp.maximum(jnp.minimum(gpus, worker) / dp, 1.0)
    ep = jnp.where(d.ep > 1.0, jnp.minimum(d.ep, tp * dp), 1.0)
    return tp, dp, ep


def instance_system(design: Design) -> SystemDesign:
    """The system design of one instance: its layout as the decode pool (``gpus`` units when
    aggregated, ``decode_gpus`` disaggregated) and ``prefill_gpus`` as the prefill pool; the
    concurrency per decode worker as the batch (0: the most that fit); MTP-style drafting when
    ``spec_k > 0``; prompt caching on; no host or storage tier; the catalog chip."""
    d = design
    disagg = d.mode == 1.0
    workers = jnp.where(disagg, jnp.maximum(safe_div(d.decode_gpus, d.gpus), 1e-9), 1.0)
    p_tp, p_dp, p_ep = prefill_layout(d)
    values = {k: jnp.full_like(d.tp, v) for k, v in SYSTEM_DEFAULTS.items()}
    # No catalog tables here (the instance's chip and model are passed in): the indices are 0.
    values.update({k: jnp.zeros(jnp.shape(d.tp), jnp.int32) for k in INDEX_FIELDS})
    values.update(
        weight_bits=d.weight_bits, act_bits=d.act_bits, kv_bits=d.kv_bits,
        tp=d.tp, pp=d.pp, ep=d.ep, dp=d.dp, kvp=d.kvp,
        decode_units=jnp.where(disagg, d.decode_gpus, d.gpus),
        batch=jnp.where(d.concurrency > 0, d.concurrency / workers, 0.0),
        prefill_tp=p_tp, prefill_dp=p_dp, prefill_ep=p_ep,
        prefill_units=jnp.where(disagg, d.prefill_gpus, 0.0),
        spec_method=jnp.where(d.spec_k > 0, 1.0, 0.0), spec_k=d.spec_k,
        prompt_cache=jnp.ones_like(d.tp), framework=d.framework,
    )  # fmt: skip
    return SystemDesign(**values)


def no_host() -> HostTier:
    """A host tier that holds nothing (fixed workloads keep their prefix in HBM)."""
    return HostTier(*(jnp.zeros(()) for _ in HostTier.__dataclass_fields__))


def serve_fixed(
    arch: Architecture,
    hw: Hardware,
    eff: Efficiency,
    rt: Runtime,
    design: Design,
    tau: Array,
    *,
    disagg: bool | None = None,
    prefill_utilization: float = PREFILL_UTILIZATION,
) -> tuple[Served, Pools, Array]:
    """(what the system serves, its pools, the decode-only request rate) for one instance on
    its fixed-length workload. ``prefill_utilization`` caps a disaggregated prefill pool's load:
    the search's open-loop operating point by default; 1.0 under closed-loop clients, whose
    fixed concurrency bounds the prefill queue. ``disagg`` (static): trace only that serving
    mode (None: both, selected by ``design.mode``). Only what a fixed workload can use is traced
    (``pools.Trace``: no FFN pool, MTP drafting or none, no lower cache tiers)."""
    sd = instance_system(design)
    k = jnp.where(design.spec_k > 0, design.spec_k, 0.0)
    profile = fixed_workload(design, rt.spec_acceptance)
    trace = Trace(disagg=disagg, afd=False, draft_model=False, tiers=False)
    p = Pools(arch, hw, hw, hw, no_host(), eff, rt, profile, sd, k, tau, trace)
    settle, decode_rate, dec = settler(p, k, tau, prefill_utilization)
    # F(r) is constant here (the hit rate is prefix / isl at any load), so F(decode_rate) is
    # the root evaluate_system would solve for.
    rate, state = settle(decode_rate)
    return serve_at(p, k, tau, rate, state, dec), p, decode_rate
