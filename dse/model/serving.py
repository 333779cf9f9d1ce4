"""Phases of serving → user-facing metrics: TTFT, TPOT, tokens/s/user, output tokens/s/GPU.

* ``prefill``: one forward pass over ``batch`` prompts (``isl - prefix`` uncached tokens each,
  attending to the whole context) → TTFT.
* ``decode``: a steady-state step of ``batch`` sequences at mean context ``isl + osl/2``,
  verifying ``spec_k`` draft tokens each and emitting ``tau`` tokens per step on average.
* ``serve`` (aggregated or disaggregated): the system model (``system.serve_at``) on the
  instance's fixed-length workload (``fixed_workload.py``), so ``dse predict`` and the
  calibration evaluate exactly the functions the search does, with the benchmark's
  closed-loop clients on top (``_serve``): aggregated, each iteration advances the running
  sequences and prefills the prompts that replace finished ones (Little's law; chunked
  prefill), and clients beyond the batch that fits queue; disaggregated, prefill and decode
  pools are rate-matched.

``evaluate(..., path=None)`` computes every path and selects by the design's phase/mode codes
(needed when one batch mixes phases, e.g. calibration data); with a static ``path`` only that
path is traced, which is what batched search uses (``batched.py`` groups designs by path).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from .architecture import Architecture
from .design import HARNESSES, Design
from .efficiency import Efficiency, Runtime, effective_framework
from .fixed_workload import serve_fixed
from .hardware import Hardware
from .layer import Segment, Setup
from .memory import (
    max_sequences,
    memory_per_gpu,
    usable_bytes,
    weight_bytes_per_gpu,
    workspace_bytes,
)
from .metrics import Metrics, bound_code
from .numerics import finite_or, safe_div, safe_pow
from .reasons import REASONS
from .step import draft_cost, forward_cost
from .system_solve import PREFILL_UTILIZATION
from .tails import Spread, latency_spreads, percentile_fields
from .tails import ttft_spread as ttft_spread_of
from .workload import mean_decode_context

PATHS = ("prefill", "decode", "serve_agg", "serve_disagg")


def path_index(phase: float, mode: float) -> int:
    """Which of PATHS a (phase, mode) code pair takes (plain Python, for grouping)."""
    if phase == 0.0:
        return 0
    if phase == 1.0:
        return 1
    return 3 if mode == 1.0 else 2


def tokens_per_step(design: Design, acceptance: Array) -> Array:
    """Mean tokens emitted per target step: given, or ``(1 - a^(k+1)) / (1 - a)`` (Leviathan et
    al., ICML'23) from the default acceptance when only ``spec_k`` is given; 1 without drafts."""
    k = design.spec_k
    # Acceptance 1 (every draft accepted) is the k + 1 limit of the formula.
    formula = safe_div(1.0 - safe_pow(acceptance, k + 1.0), 1.0 - acceptance, 0.0)
    formula = jnp.where(acceptance >= 1.0, k + 1.0, formula)
    given = design.spec_tokens_per_step
    tau = jnp.where(given >= 1.0, given, formula)
    return jnp.where(k > 0, jnp.clip(tau, 1.0, k + 1.0), 1.0)


def decode_context(design: Design) -> Array:
    d = design
    return mean_decode_context(d.isl, d.osl, d.isl_cv, d.osl_cv, d.length_corr)


def _metrics(
    *,
    ttft,
    tpot,
    tok_gpu,
    input_rate,
    mem,
    batch,
    feasible,
    reason,
    bound,
    cost,
    cap,
    ttft_spread=None,
    tpot_spread=None,
) -> Metrics:
    """Assemble Metrics (SI seconds in, ms out) for one serving path; the spreads give the
    percentiles (default: none, every percentile the mean: a path where nothing varies)."""
    zero = jnp.zeros_like(ttft)
    ttft_spread = ttft_spread if ttft_spread is not None else Spread(ttft, zero, zero)
    tpot_spread = tpot_spread if tpot_spread is not None else Spread(tpot, zero, zero)
    return Metrics(
        ttft_ms=ttft * 1e3,
        tpot_ms=tpot * 1e3,
        **percentile_fields(ttft_spread, tpot_spread),
        tok_s_user=safe_div(1.0, tpot),
        tok_s_gpu=tok_gpu,
        input_tok_s_gpu=input_rate,
        memory_gb=mem / 1e9,
        batch=batch,
        feasible=feasible.astype(jnp.float64),
        reason=reason,
        bound=bound,
        compute_s=cost.compute,
        memory_s=cost.memory,
        network_s=cost.network,
        overhead_s=cost.overhead,
        max_batch=cap,
    )


class _Common(eqx.Module):
    """Quantities every path needs (computed once per design)."""

    eff: Efficiency
    tau: Array
    spec: Array
    ctx: Array
    cap: Array
    weights_fit: Array
    new: Array

    def __init__(self, s: Setup, eff: Efficiency):
        d = s.design
        self.eff = eff  # every generation's parameters (the system pools select their own)
        self.tau = tokens_per_step(d, s.rt.spec_acceptance)
        self.spec = d.spec_k > 0
        self.ctx = decode_context(d)
        self.cap = max_sequences(s, self.ctx, self.spec)
        self.weights_fit = weight_bytes_per_gpu(s, self.spec) + workspace_bytes(s) <= usable_bytes(
            s
        )
        self.new = jnp.maximum(d.isl - d.prefix, 1.0)

    def reason(self, ok: Array, otherwise: float) -> Array:
        return jnp.where(
            ~self.weights_fit, REASONS["weights_exceed_memory"], jnp.where(ok, 0.0, otherwise)
        )


def _prefill(s: Setup, c: _Common) -> Metrics:
    d = s.design
    seg = Segment(d.batch / d.dp, c.new, d.prefix, absorbed=False)
    cost = forward_cost(s, (seg,), seg.seqs)
    mem = memory_per_gpu(s, d.batch, d.isl, c.spec)
    ok = c.weights_fit & (mem <= usable_bytes(s))
    rate = safe_div(d.batch * c.new, cost.total) / d.gpus
    zero = jnp.zeros_like(cost.total)
    return _metrics(
        ttft=cost.total,
        tpot=zero,
        tok_gpu=zero,
        input_rate=rate,
        mem=mem,
        batch=d.batch,
        feasible=ok,
        reason=c.reason(ok, REASONS["kv_exceeds_memory"]),
        bound=bound_code(cost),
        cost=cost,
        cap=c.cap,
    )


def _decode(s: Setup, c: _Common) -> Metrics:
    d = s.design
    batch = jnp.where(d.batch > 0, d.batch, c.cap)  # 0: the largest batch that fits
    micro = jnp.maximum(batch / (d.dp * d.pp), 1e-9)
    seg = Segment(micro, 1.0 + d.spec_k, c.ctx)
    cost = forward_cost(s, (seg,), seg.tokens) + draft_cost(s, seg, d.spec_k)
    mem = memory_per_gpu(s, batch, c.ctx, c.spec)
    ok = c.weights_fit & (mem <= usable_bytes(s)) & (batch >= 1.0)
    zero = jnp.zeros_like(cost.total)
    tok_gpu = safe_div(batch * c.tau, cost.total) / d.gpus
    return _metrics(
        ttft=zero,
        tpot=cost.total / c.tau,
        tok_gpu=tok_gpu,
        input_rate=zero,
        mem=mem,
        batch=batch,
        feasible=ok,
        reason=c.reason(ok, REASONS["kv_exceeds_memory"]),
        bound=bound_code(cost),
        cost=cost,
        cap=c.cap,
    )


def _serve(s: Setup, c: _Common, disagg: bool) -> Metrics:
    """Serving under a benchmark's closed-loop clients: the system model on the instance's
    fixed-length workload (``fixed_workload.serve_fixed``: the same step, iteration mixture,
    rate matching and TTFT parts the search uses), with ``concurrency`` clients that each send
    their next request when the last one finishes (``concurrency`` 0: as many as fit).

    * Aggregated: clients beyond the batch that fits wait in a queue that drains at the
      request rate (Little's law for the wait).
    * Disaggregated: the prefill pool may run at full load (the clients bound its queue), and
      the time a request spends outside decoding is the closed-loop Little's-law time
      ``C / X - osl * TPOT``, never less than one prefill plus the hand-off and the host path.
    """
    d = s.design
    util = 1.0 if disagg else PREFILL_UTILIZATION  # aggregated: the utilization is not used
    served, p, decode_rate = serve_fixed(
        s.arch, s.hw, c.eff, s.rt, d, c.tau, disagg=disagg, prefill_utilization=util
    )
    osl = jnp.maximum(d.osl, 1.0)
    rate, tpot = served.rate, served.tpot
    workers = p.decode_workers
    # The framework's request path (API server, tokenizer, streaming) is on the way of an HTTP
    # client only; MLPerf LoadGen and trtllm-bench call the engine in process (design.HARNESSES).
    request = jnp.where(d.harness == HARNESSES.index("in_process"), 0.0, served.request)
    if disagg:
        in_flight = jnp.where(d.concurrency > 0, d.concurrency, p.batch * workers)
        closed_loop = safe_div(in_flight, rate) - d.osl * tpot
        ttft = jnp.maximum(served.prefill_alone + served.handoff + request, closed_loop)
        fixed = served.handoff + request
        total_gpus = jnp.maximum(d.prefill_gpus + d.decode_gpus, 1.0)
        ps = p.prefill_setup
        per_rank = p.prefill_per_rank(served.uncached)
        ok_pools = (d.prefill_gpus > 0) & (d.decode_gpus >= d.gpus)
        fits = (c.cap >= 1.0) & (
            memory_per_gpu(ps, per_rank * ps.design.dp, d.isl, c.spec) <= usable_bytes(ps)
        )
        feasible = ok_pools & fits & c.weights_fit
        reason = jnp.where(
            ~c.weights_fit,
            REASONS["weights_exceed_memory"],
            jnp.where(
                ok_pools,
                jnp.where(fits, 0.0, REASONS["no_sequence_fits"]),
                REASONS["disagg_pools_missing"],
            ),
        )
        bound = jnp.where(served.prefill_rate < decode_rate, 4.0, bound_code(served.step))
    else:
        wanted = jnp.where(d.concurrency > 0, d.concurrency, p.batch)
        queue = safe_div(jnp.maximum(wanted - p.batch, 0.0), rate)
        ttft = served.ttft - served.request + request + queue
        fixed = request + queue  # clients queue for a free slot: deterministic here
        total_gpus = d.gpus
        feasible = c.weights_fit & (c.cap >= 1.0)
        reason = c.reason(feasible, REASONS["no_sequence_fits"])
        bound = bound_code(served.step)
    tok_gpu = rate * osl / total_gpus
    prof = p.profile
    ttft_spread, tpot_spread = latency_spreads(
        served, prof.new_tokens_cv, osl, prof.output_cv, s.rt.spec_acceptance, d.spec_k,
        c.tau, jnp.asarray(disagg),
    )  # fmt: skip
    if disagg:
        # Closed loop: the wait beyond one prefill, hand-off and host path is the clients'
        # queue at the prefill pool (Little's law), with the open-loop queue's tail shape.
        wait = jnp.maximum(ttft - (served.prefill_alone + served.handoff + request), 0.0)
        ttft_spread = ttft_spread_of(
            fixed=fixed, mean=ttft, own_prefill=served.prefill_alone,
            new_tokens_cv=prof.new_tokens_cv, other_prompts=0.0, prompt_cost=0.0,
            iteration=0.0, balance=0.0, queue=wait,
            rho=jnp.clip(served.prefill_utilization, 1e-9, 1.0),
        )  # fmt: skip
    else:
        # Clients beyond the batch queue for a slot: a deterministic shift of the open loop.
        ttft_spread = Spread(fixed, jnp.maximum(ttft - fixed, 0.0), ttft_spread.variance)
    return _metrics(
        ttft=ttft,
        tpot=tpot,
        ttft_spread=ttft_spread,
        tpot_spread=tpot_spread,
        tok_gpu=tok_gpu,
        input_rate=tok_gpu * c.new / osl,
        mem=memory_per_gpu(s, served.active, c.ctx, c.spec),
        batch=served.active * workers,
        feasible=feasible,
        reason=reason,
        bound=bound,
        cost=served.step,
        cap=c.cap,
    )


def _serve_agg(s: Setup, c: _Common) -> Metrics:
    return _serve(s, c, disagg=False)


def _serve_disagg(s: Setup, c: _Common) -> Metrics:
    return _serve(s, c, disagg=True)


_PATH_FUNCS = (_prefill, _decode, _serve_agg, _serve_disagg)


def evaluate(
    arch: Architecture,
    hw: Hardware,
    efficiency: Efficiency,
    runtime: Runtime,
    design: Design,
    *,
    path: int | None = None,
) -> Metrics:
    """Metrics of one design point. Pure; ``jax.vmap`` it over stacked inputs.

    ``efficiency`` holds every generation's parameters (arrays of shape [G]); the hardware's
    generation picks its row. ``path`` (static, an index into PATHS) restricts the computation
    to one phase/mode; ``None`` computes all and selects by ``design.phase``/``design.mode``.
    """
    fw = effective_framework(hw.sram_first, design.framework)
    design = eqx.tree_at(lambda d: d.framework, design, fw)
    s = Setup(arch, hw, efficiency.select(hw.generation), runtime, design)
    c = _Common(s, efficiency)
    if path is not None:
        out = _PATH_FUNCS[path](s, c)
    else:
        outs = [f(s, c) for f in _PATH_FUNCS]
        d = design
        idx = jnp.where(
            d.phase == 0.0, 0, jnp.where(d.phase == 1.0, 1, jnp.where(d.mode == 1.0, 3, 2))
        )
        out = jax.tree.map(lambda *xs: jnp.stack(xs)[idx], *outs)
    return Metrics(*[finite_or(x, 0.0) for x in out.as_tuple()])
