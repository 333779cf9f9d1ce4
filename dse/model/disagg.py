"""Disaggregated serving of one replica: a prefill pool and a decode pool, rate-matched.

The decode pool holds ``decode_gpus / (tp*pp*dp)`` workers of the design's layout; the prefill
pool holds ``prefill_gpus`` GPUs in workers of the same style (DEP stays DEP, TP stays TP) no
larger than a decode worker. Throughput is the smaller of the two pools' request rates (a hard
minimum, differentiable except at exact balance); when prefill limits, decode workers run
emptier and TPOT improves accordingly. TTFT = the closed-loop Little's-law time not spent decoding (``C / X - osl * TPOT``), never less than
the prefill of one prompt plus the KV hand-off. Heterogeneous pools arrive with the stack issue.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax.numpy as jnp
from jax import Array

from .layer import Segment, Setup
from .memory import max_sequences, memory_per_gpu, usable_bytes
from .metrics import REASONS, bound_code
from .numerics import safe_div
from .roofline import Cost
from .step import draft_cost, forward_cost
from .tiers import kv_bytes_per_token


class DisaggResult(NamedTuple):
    ttft: Array
    tpot: Array
    tok_s_gpu: Array
    feasible: Array
    reason: Array
    memory: Array
    batch: Array
    bound: Array
    cost: Cost  # the decode step that sets TPOT


def _prefill_setup(s: Setup, gpus: Array) -> Setup:
    d = s.design
    worker = d.tp * d.dp
    scale = jnp.clip(safe_div(gpus, worker, 1.0), 1e-9, 1.0)
    dp = jnp.where(d.dp > 1.0, jnp.maximum(d.dp * scale, 1.0), 1.0)
    tp = jnp.maximum(jnp.minimum(gpus, worker) / dp, 1.0)
    ep = jnp.where(d.ep > 1.0, jnp.minimum(d.ep, tp * dp), 1.0)
    pd = eqx.tree_at(lambda x: (x.tp, x.dp, x.ep, x.pp), d, (tp, dp, ep, jnp.ones_like(d.pp)))
    return Setup(s.arch, s.hw, s.eff, s.rt, pd)


def disaggregated_serve(s: Setup, tau: Array, ctx: Array) -> DisaggResult:
    d, a = s.design, s.arch
    spec = d.spec_k > 0
    workers = jnp.maximum(safe_div(d.decode_gpus, d.gpus), 1e-9)
    cap = max_sequences(s, ctx, spec)
    wanted = jnp.where(d.concurrency > 0, d.concurrency / workers, cap)
    batch = jnp.maximum(jnp.minimum(wanted, cap), 1e-9)

    def decode_step(b: Array):
        seg = Segment(b / (d.dp * d.pp), 1.0 + d.spec_k, ctx)
        return forward_cost(s, (seg,), seg.tokens) + draft_cost(s, seg, d.spec_k)

    dec = decode_step(batch)
    decode_req_rate = safe_div(workers * batch * tau, dec.total * jnp.maximum(d.osl, 1.0))

    p = _prefill_setup(s, d.prefill_gpus)
    new = jnp.maximum(d.isl - d.prefix, 1.0)
    per_rank = jnp.maximum(safe_div(s.rt.chunk_tokens, new), 1.0)
    pre = forward_cost(p, (Segment(per_rank, new, d.prefix, absorbed=False),), per_rank)
    p_gpus = p.design.tp * p.design.dp
    prefill_req_rate = (
        safe_div(d.prefill_gpus, p_gpus) * p.design.dp * safe_div(per_rank, pre.total)
    )

    rate = jnp.minimum(prefill_req_rate, decode_req_rate)
    # Prefill-limited: fewer sequences are decoding at once (Little's law), so steps are faster.
    active = jnp.minimum(batch, safe_div(rate * d.osl * dec.total / tau, workers))
    dec2 = decode_step(jnp.maximum(active, 1e-9))
    tpot = dec2.total / tau

    one = forward_cost(
        p, (Segment(jnp.asarray(1.0), new, d.prefix, absorbed=False),), jnp.asarray(1.0)
    )
    # Sliding-window layers hand off at most their window (as memory.py and tiers.py count).
    kv_total = kv_bytes_per_token(a, d.kv_bits, d.isl) * d.isl
    handoff = safe_div(
        kv_total, s.hw.scaleout_bandwidth * s.eff.link_eff * jnp.minimum(d.gpus, 8.0)
    )
    # Closed loop at fixed concurrency C (Little's law): C = X (TTFT + osl TPOT), so whatever of
    # a request's time in the system is not decoding is spent waiting for and in prefill.
    in_flight = jnp.where(d.concurrency > 0, d.concurrency, batch * workers)
    closed_loop = safe_div(in_flight, rate) - d.osl * tpot
    # The framework's per-request host latency is part of the open-loop TTFT; the closed-loop
    # value already contains whatever a request spends outside decoding.
    ttft = jnp.maximum(one.total + handoff + s.rt.request_seconds(d.framework), closed_loop)

    ok_pools = (d.prefill_gpus > 0) & (d.decode_gpus >= d.gpus)
    fits = (cap >= 1.0) & (
        memory_per_gpu(p, per_rank * p.design.dp, d.isl, spec) <= usable_bytes(p)
    )
    feasible = ok_pools & fits
    reason = jnp.where(
        ok_pools, jnp.where(fits, 0.0, REASONS["no_sequence_fits"]), REASONS["disagg_pools_missing"]
    )
    total_gpus = jnp.maximum(d.prefill_gpus + d.decode_gpus, 1.0)
    bound = jnp.where(prefill_req_rate < decode_req_rate, 4.0, bound_code(dec2))
    return DisaggResult(
        ttft=ttft,
        tpot=tpot,
        tok_s_gpu=rate * d.osl / total_gpus,
        feasible=feasible,
        reason=reason,
        memory=memory_per_gpu(s, active, ctx, spec),
        batch=active * workers,
        bound=bound,
        cost=dec2,
    )
