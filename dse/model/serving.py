"""Phases of serving → user-facing metrics: TTFT, TPOT, tokens/s/user, output tokens/s/GPU.

* ``prefill``: one forward pass over ``batch`` prompts (``isl - prefix`` uncached tokens each,
  attending to the whole context) → TTFT.
* ``decode``: a steady-state step of ``batch`` sequences at mean context ``isl + osl/2``,
  verifying ``spec_k`` draft tokens each and emitting ``tau`` tokens per step on average.
* ``serve`` (aggregated, continuous batching with chunked prefill): each iteration advances
  ``B`` running sequences and prefills the prompts of the requests that replace finished
  ones, ``B * tau / osl`` per iteration (Little's law in steady state). Requests beyond the
  batch that fits wait in a queue (Little's law again for the wait).
* ``serve`` (disaggregated): prefill pool and decode pool, throughput rate-matched (the
  slower pool sets it), KV handed over the scale-out link.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array

from ..catalog.architecture import Architecture
from ..catalog.hardware import Hardware
from .design import Design
from .disagg import disaggregated_serve
from .efficiency import Efficiency, Runtime
from .layer import Segment, Setup
from .memory import max_sequences, memory_per_gpu, usable_bytes, weight_bytes_per_gpu, workspace_bytes
from .metrics import REASONS, Metrics, bound_code
from .numerics import finite_or, safe_div, safe_pow
from .step import draft_cost, forward_cost


def tokens_per_step(design: Design, acceptance: Array) -> Array:
    """Mean tokens emitted per target step: given, or ``(1 - a^(k+1)) / (1 - a)`` (Leviathan et
    al., ICML'23) from the default acceptance when only ``spec_k`` is given; 1 without drafts."""
    k = design.spec_k
    formula = safe_div(1.0 - safe_pow(acceptance, k + 1.0), 1.0 - acceptance, 1.0)
    given = design.spec_tokens_per_step
    tau = jnp.where(given >= 1.0, given, formula)
    return jnp.where(k > 0, jnp.clip(tau, 1.0, k + 1.0), 1.0)


def decode_context(design: Design) -> Array:
    return design.isl + 0.5 * design.osl


def evaluate(arch: Architecture, hw: Hardware, efficiency: Efficiency, runtime: Runtime, design: Design) -> Metrics:
    """Metrics of one design point. Pure; ``jax.vmap`` it over stacked inputs."""
    s = Setup(arch, hw, efficiency.select(hw.generation), runtime, design)
    d = design
    tau = tokens_per_step(d, runtime.spec_acceptance)
    spec = d.spec_k > 0
    ctx = decode_context(d)
    cap = max_sequences(s, ctx, spec)
    weights_fit = weight_bytes_per_gpu(s, spec) + workspace_bytes(s) <= usable_bytes(s)

    # ---- prefill ---------------------------------------------------------------------------
    new = jnp.maximum(d.isl - d.prefix, 1.0)
    pre_seg = Segment(d.batch / d.dp, new, d.prefix, absorbed=False)
    pre = forward_cost(s, (pre_seg,), pre_seg.seqs)
    pre_mem = memory_per_gpu(s, d.batch, d.isl, spec)

    # ---- decode (explicit batch, or the largest that fits when batch is 0) -----------------
    dec_batch = jnp.where(d.batch > 0, d.batch, cap)
    micro = jnp.maximum(dec_batch / (d.dp * d.pp), 1e-9)
    dec_seg = Segment(micro, 1.0 + d.spec_k, ctx)
    dec = forward_cost(s, (dec_seg,), dec_seg.tokens) + draft_cost(s, dec_seg, d.spec_k)
    dec_mem = memory_per_gpu(s, dec_batch, ctx, spec)

    # ---- aggregated serving ------------------------------------------------------------------
    wanted = jnp.where(d.concurrency > 0, d.concurrency, cap)
    running = jnp.maximum(jnp.minimum(wanted, cap), 1e-9)
    srv_micro = running / (d.dp * d.pp)
    srv_dec = Segment(srv_micro, 1.0 + d.spec_k, ctx)
    admitted = Segment(srv_micro * tau / jnp.maximum(d.osl, 1.0), new, d.prefix, absorbed=False)
    it = forward_cost(s, (srv_dec, admitted), srv_dec.tokens + admitted.seqs)
    it = it + draft_cost(s, srv_dec, d.spec_k)
    one_prompt = Segment(jnp.asarray(1.0), new, d.prefix, absorbed=False)
    first = forward_cost(s, (srv_dec, one_prompt), srv_dec.tokens + 1.0)
    req_rate = safe_div(running * tau, it.total * jnp.maximum(d.osl, 1.0))
    queue_wait = safe_div(jnp.maximum(wanted - running, 0.0), req_rate)
    srv_ttft = first.total + 0.5 * it.total + queue_wait
    srv_tpot = it.total / tau
    srv_gpu = safe_div(running * tau, it.total) / d.gpus
    srv_mem = memory_per_gpu(s, running, ctx, spec)
    agg_ok = weights_fit & (cap >= 1.0)

    dis = disaggregated_serve(s, tau, ctx)

    # ---- select by phase / mode --------------------------------------------------------------
    is_pre, is_dec = d.phase == 0.0, d.phase == 1.0
    is_dis = d.mode == 1.0
    dec_ok = weights_fit & (dec_mem <= usable_bytes(s)) & (dec_batch >= 1.0)
    pre_ok = weights_fit & (pre_mem <= usable_bytes(s))

    def pick(prefill, decode, agg, disagg):
        return jnp.where(is_pre, prefill, jnp.where(is_dec, decode, jnp.where(is_dis, disagg, agg)))

    dec_tpot = dec.total / tau
    ttft = pick(pre.total, 0.0, srv_ttft, dis.ttft)
    tpot = pick(0.0, dec_tpot, srv_tpot, dis.tpot)
    tok_gpu = pick(0.0, safe_div(dec_batch * tau, dec.total) / d.gpus, srv_gpu, dis.tok_s_gpu)
    feasible = pick(pre_ok, dec_ok, agg_ok, dis.feasible)
    reason = jnp.where(
        ~weights_fit,
        REASONS["weights_exceed_memory"],
        pick(
            jnp.where(pre_ok, 0.0, REASONS["kv_exceeds_memory"]),
            jnp.where(dec_ok, 0.0, REASONS["kv_exceeds_memory"]),
            jnp.where(agg_ok, 0.0, REASONS["no_sequence_fits"]),
            dis.reason,
        ),
    )
    main = jax.tree.map(lambda *xs: pick(*xs), pre, dec, it, it)
    mem = pick(pre_mem, dec_mem, srv_mem, dis.memory)
    batch = pick(d.batch, dec_batch, running, dis.batch)
    input_rate = pick(safe_div(d.batch * new, pre.total) / d.gpus, 0.0, srv_gpu * new / jnp.maximum(d.osl, 1.0), dis.tok_s_gpu * new / jnp.maximum(d.osl, 1.0))
    bound = jnp.where(is_dis & ~is_pre & ~is_dec, dis.bound, bound_code(main))

    out = Metrics(
        ttft_ms=ttft * 1e3,
        tpot_ms=tpot * 1e3,
        tok_s_user=safe_div(1.0, tpot),
        tok_s_gpu=tok_gpu,
        input_tok_s_gpu=input_rate,
        memory_gb=mem / 1e9,
        batch=batch,
        feasible=feasible.astype(jnp.float64),
        reason=reason,
        bound=bound,
        compute_s=main.compute,
        memory_s=main.memory,
        network_s=main.network,
        overhead_s=main.overhead,
        max_batch=cap,
    )
    return Metrics(*[finite_or(x, 0.0) for x in out.as_tuple()])
