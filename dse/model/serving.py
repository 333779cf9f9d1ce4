"""Phases of serving → user-facing metrics: TTFT, TPOT, tokens/s/user, output tokens/s/GPU.

* ``prefill``: one forward pass over ``batch`` prompts (``isl - prefix`` uncached tokens each,
  attending to the whole context) → TTFT.
* ``decode``: a steady-state step of ``batch`` sequences at mean context ``isl + osl/2``,
  verifying ``spec_k`` draft tokens each and emitting ``tau`` tokens per step on average.
* ``serve`` (aggregated, continuous batching with chunked prefill): each iteration advances
  ``B`` running sequences and prefills the prompts of the requests that replace finished
  ones, ``B * tau / osl`` per iteration (Little's law in steady state). Requests beyond the
  batch that fits wait in a queue (Little's law again for the wait).
* ``serve`` (disaggregated, ``disagg.py``): prefill and decode pools, rate-matched.

``evaluate(..., path=None)`` computes every path and selects by the design's phase/mode codes
(needed when one batch mixes phases, e.g. calibration data); with a static ``path`` only that
path is traced, which is what batched search uses (``batched.py`` groups designs by path).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from ..catalog.architecture import Architecture
from ..catalog.hardware import Hardware
from .design import Design
from .disagg import disaggregated_serve
from .efficiency import Efficiency, Runtime, effective_framework
from .layer import Segment, Setup
from .memory import (
    max_sequences,
    memory_per_gpu,
    usable_bytes,
    weight_bytes_per_gpu,
    workspace_bytes,
)
from .metrics import REASONS, Metrics, bound_code
from .numerics import expected_max_poisson, finite_or, safe_div, safe_pow
from .step import draft_cost, forward_cost

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
    return design.isl + 0.5 * design.osl


def _metrics(
    *, ttft, tpot, tok_gpu, input_rate, mem, batch, feasible, reason, bound, cost, cap
) -> Metrics:
    """Assemble Metrics (SI seconds in, ms out) for one serving path."""
    return Metrics(
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
        compute_s=cost.compute,
        memory_s=cost.memory,
        network_s=cost.network,
        overhead_s=cost.overhead,
        max_batch=cap,
    )


class _Common:
    """Quantities every path needs (computed once per design)."""

    def __init__(self, s: Setup):
        d = s.design
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


def admitted_iteration(
    s: Setup, dec: Segment, prompts: Array, new: Array, prefix: Array, draft
) -> tuple:
    """(cost of an iteration that admits ``max(prompts, 1)`` prompts, the same without the
    draft: the iteration a new request's own prefill runs in)."""
    n = jnp.maximum(prompts, 1.0)
    admitted = Segment(n, new, prefix, absorbed=False)
    first = forward_cost(s, (dec, admitted), dec.tokens + n)
    return first + draft, first


def mix_iterations(decode_only, with_prompts, prompts: Array):
    """Mean iteration cost when ``prompts`` prompts arrive per iteration on average.

    Below one prompt per iteration, most iterations decode only and a fraction ``prompts`` of
    them also prefill one whole (chunk of a) prompt. Averaging the prompt into every iteration
    instead (a fractional prompt) would be wrong where cost is not linear in tokens: an MoE
    iteration with 4 decode tokens touches ~12 % of DeepSeek's experts, one with a 8K-token
    prompt all of them (Jensen's inequality; the mean of the costs, not the cost of the mean).
    From one prompt per iteration on, every iteration admits ``prompts`` of them."""
    w = jnp.minimum(prompts, 1.0)
    return decode_only.scale(1.0 - w) + with_prompts.scale(w)


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


def _serve_agg(s: Setup, c: _Common) -> Metrics:
    d = s.design
    wanted = jnp.where(d.concurrency > 0, d.concurrency, c.cap)
    running = jnp.maximum(jnp.minimum(wanted, c.cap), 1e-9)
    micro = running / (d.dp * d.pp)
    osl = jnp.maximum(d.osl, 1.0)
    dec = Segment(micro, 1.0 + d.spec_k, c.ctx)
    # New prompts land whole on single DP ranks. With MoE layers every rank joins every step's
    # all-to-all, so the step waits for the busiest rank; dense DP replicas run independently.
    synced = jnp.where(s.arch.num_experts > 0, d.dp, 1.0)
    prompts = expected_max_poisson(micro * c.tau / osl, synced)
    draft = draft_cost(s, dec, d.spec_k)
    decode_only = forward_cost(s, (dec,), dec.tokens) + draft
    with_prompts, first = admitted_iteration(s, dec, prompts, c.new, d.prefix, draft)
    it = mix_iterations(decode_only, with_prompts, prompts)
    req_rate = safe_div(running * c.tau, it.total * osl)
    queue_wait = safe_div(jnp.maximum(wanted - running, 0.0), req_rate)
    ttft = first.total + 0.5 * it.total + queue_wait + s.rt.request_seconds(d.framework)
    tok_gpu = safe_div(running * c.tau, it.total) / d.gpus
    ok = c.weights_fit & (c.cap >= 1.0)
    mem = memory_per_gpu(s, running, c.ctx, c.spec)
    return _metrics(
        ttft=ttft,
        tpot=it.total / c.tau,
        tok_gpu=tok_gpu,
        input_rate=tok_gpu * c.new / osl,
        mem=mem,
        batch=running,
        feasible=ok,
        reason=c.reason(ok, REASONS["no_sequence_fits"]),
        bound=bound_code(it),
        cost=it,
        cap=c.cap,
    )


def _serve_disagg(s: Setup, c: _Common) -> Metrics:
    r = disaggregated_serve(s, c.tau, c.ctx)
    osl = jnp.maximum(s.design.osl, 1.0)
    # Weights that do not fit say so first (as on the other paths), then the pools' own reason.
    reason = jnp.where(
        ~c.weights_fit,
        REASONS["weights_exceed_memory"],
        jnp.where(r.reason > 0, r.reason, c.reason(r.feasible, REASONS["no_sequence_fits"])),
    )
    feasible = r.feasible & c.weights_fit
    return _metrics(
        ttft=r.ttft,
        tpot=r.tpot,
        tok_gpu=r.tok_s_gpu,
        input_rate=r.tok_s_gpu * c.new / osl,
        mem=r.memory,
        batch=r.batch,
        feasible=feasible,
        reason=reason,
        bound=r.bound,
        cost=r.cost,
        cap=c.cap,
    )


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
    c = _Common(s)
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
