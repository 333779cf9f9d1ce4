"""Time of one engine step: a forward pass over a batch of segments through every layer.

One step runs all ``num_layers`` layers (over ``pp`` stages in sequence for one micro-batch),
hands activations between stages, computes logits for the tokens that need them, and pays the
fixed costs of what runs: every kernel's fixed time (``kernels.py`` counts them per layer
type), every collective's latency (``collectives.py``), and the serving framework's host work
per step, partly hidden by its overlap scheduler. Per layer:

    attention projections + attention core + [KV-parallel combine] + [TP all-reduce]
    + dense MLP + [TP all-reduce]                                   (dense layers)
    + router + routed experts + shared experts + [EP all-to-all]    (MoE layers)

A calibrated fraction ``comm_overlap`` of the collectives hides behind compute (two-micro-batch
overlap in SGLang/DeepSeek, TRT-LLM's overlap of shared and routed experts).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
from jax import Array

from .collectives import all_reduce_time, all_to_all_time, moe_all_to_all_time, send_recv_time
from .kernels import (
    attention_kernels_per_step,
    ffn_kernels_per_step,
    kernels_per_step,
    layer_kernels,
)
from .layer import (
    ACT_BYTES,
    Segment,
    Setup,
    attention_core,
    attention_projections,
    dense_mlp,
    elementwise,
    embedding,
    logits,
    moe_experts,
)
from .numerics import safe_div, safe_pow
from .roofline import Cost, network_cost, overhead_cost, select_cost


def _tp_all_reduce(s: Setup, tokens: Array, group: Array) -> Cost:
    nbytes = tokens * s.arch.hidden_size * ACT_BYTES
    return network_cost(all_reduce_time(nbytes, group, s.hw, s.eff, s.rt))


def _moe_all_to_all(s: Setup, tokens: Array, imbalance: Array) -> Cost:
    """Dispatch (FP8 when weights are <= 8 bit, as DeepEP does) and BF16 combine over EP ranks.

    Inside a scale-up domain every (token, expert) copy travels. Across domains DeepEP's
    internode kernels send a token once per destination domain and forward it over NVLink
    there (DeepSeek-V3 §3.2.2), so NIC bytes scale with the expected number of distinct remote
    domains among a token's k experts, ``n (1 - (1 - 1/n)^k) (n - 1) / n`` for n domains.
    """
    a, d, hw = s.arch, s.design, s.hw
    dispatch_bytes = jnp.where(d.weight_bits <= 8.0, 1.0 + 4.0 / 128.0, ACT_BYTES)
    per_copy = a.hidden_size * (dispatch_bytes + ACT_BYTES)
    local_tokens = safe_div(tokens, d.tp) * imbalance
    copies = a.experts_per_token * safe_div(d.ep - 1.0, d.ep)
    inside = jnp.minimum(d.ep, hw.scaleup_domain)
    domains = jnp.maximum(safe_div(d.ep, inside, 1.0), 1.0)
    hit = domains * (1.0 - safe_pow(jnp.clip(1.0 - 1.0 / domains, 0.0, 1.0), a.experts_per_token))
    remote_domains = hit * (domains - 1.0) / domains
    t = moe_all_to_all_time(
        local_tokens * copies * per_copy,
        local_tokens * remote_domains * per_copy,
        d.ep,
        hw,
        s.eff,
        s.rt,
    )
    return network_cost(t)


def moe_communication(s: Setup, tokens: Array, imbalance: Array) -> Cost:
    """Collectives of one MoE layer for ``tokens`` per DP rank.

    * Attention data parallel (``dp > 1``): each rank holds different tokens, so they are
      dispatched to their experts' ranks and combined back (all-to-all, DeepEP-style), and
      expert outputs are reduced over the MoE-TP ranks that split one expert.
    * Attention tensor parallel (``dp = 1``): after the attention all-reduce every rank of the
      group holds every token, so nothing is dispatched: each rank runs its local experts (or
      expert shards) on the tokens routed to them and one all-reduce over the group sums the
      partial outputs (TensorRT-LLM's TP/EP MoE, SGLang's EP MoE without DeepEP). This is the
      layout of min-latency serving; an all-to-all there would pay two latencies for nothing.
    """
    d = s.design
    replicated = d.dp <= 1.0
    a2a = _moe_all_to_all(s, tokens, imbalance)
    # One all-reduce either way: over the whole group of the replicated tokens (dp = 1), or,
    # with DP attention, over the MoE-TP ranks of one expert for a token set dp x wider.
    wide = tokens * jnp.maximum(1.0, safe_div(d.moe_tp, d.tp, 1.0))
    reduce = _tp_all_reduce(
        s, jnp.where(replicated, tokens, wide), jnp.where(replicated, d.tp * d.dp, d.moe_tp)
    )
    return reduce + a2a.scale(jnp.where(replicated, 0.0, 1.0))


# Partial attention outputs travel in BF16 with one FP32 log-sum-exp per (token, head).
LSE_BYTES = 4.0


def kvp_combine(s: Setup, tokens: Array) -> Cost:
    """The KV-parallel combine of one layer (Helix, arXiv:2507.07120 §3): each GPU holds partial
    outputs of its ``heads / attention_tp`` heads over its KV slice for ``tokens`` tokens; one
    all-to-all over the ``kvp`` slices leaves it the ``heads / tp`` heads it projects, each
    partial with its log-sum-exp so the receiver rescales and sums them (one small kernel).
    Bytes sent per GPU are ``(kvp - 1) / kvp`` of its partials: independent of the context
    length, which is what makes the scheme pay at long contexts. Zero when ``kvp = 1``."""
    a, d = s.arch, s.design
    kvp = jnp.maximum(d.kvp, 1.0)
    heads_local = a.num_attention_heads / d.attention_tp
    partials = tokens * heads_local * (a.attention_value_width * ACT_BYTES + LSE_BYTES)
    sent = partials * (kvp - 1.0) / kvp
    exchange = network_cost(all_to_all_time(sent, kvp, d.tp, s.hw, s.eff, s.rt))
    rescale = kernel_overhead(s, jnp.where(kvp > 1.0, 1.0, 0.0), 0.0, 0.0)
    return exchange + rescale


class Block(NamedTuple):
    """Work of one half of every layer: kernels (``ops``) and collectives (``comm``)."""

    ops: Cost
    comm: Cost

    def overlapped(self, s: Setup) -> Cost:
        # Overlap hides part of the communication behind compute (never more than either).
        hidden = s.eff.comm_overlap * jnp.minimum(self.ops.total, self.comm.total)
        return self.ops + self.comm + network_cost(-hidden)


def attention_block(s: Setup, segs: tuple[Segment, ...], tokens: Array) -> Block:
    """Attention half of all layers (projections, core, norms), its KV-parallel combines and
    its TP all-reduces."""
    a, d = s.arch, s.design
    full_layers = a.num_layers - a.num_sliding_layers
    ops = attention_projections(s, tokens).scale(a.num_layers)
    ops = ops + attention_core(s, segs, sliding=False).scale(full_layers)
    ops = ops + attention_core(s, segs, sliding=True).scale(a.num_sliding_layers)
    ops = ops + elementwise(s, tokens).scale(a.num_layers)
    comm = (_tp_all_reduce(s, tokens, d.tp) + kvp_combine(s, tokens)).scale(a.num_layers)
    return Block(ops, comm)


def ffn_block(s: Setup, tokens: Array) -> Block:
    """FFN half of all layers: dense MLPs, routed + shared experts, their collectives."""
    a, d = s.arch, s.design
    dense_ops = dense_mlp(s, tokens, a.intermediate_size).scale(a.num_mlp_dense_layers)
    dense_comm = _tp_all_reduce(s, tokens, d.tp).scale(a.num_mlp_dense_layers)
    experts, imbalance = moe_experts(s, tokens)
    shared = dense_mlp(s, tokens, a.num_shared_experts * a.shared_expert_intermediate_size)
    moe_ops = (experts + shared).scale(a.num_moe_layers)
    moe_comm = moe_communication(s, tokens, imbalance).scale(a.num_moe_layers)
    return Block(dense_ops + moe_ops, dense_comm + moe_comm)


def kernel_overhead(s: Setup, kernels: Array, layers: Array, moe_layers: Array) -> Cost:
    """Fixed GPU time of ``kernels`` fused kernels (``kernel_us`` each, times the framework's
    ``kernel_factor``: the kernels it really launches) plus the per-layer synchronisation of
    SRAM-first chips (0 on GPUs) over ``layers`` (``moe_layers``) layers."""
    e = s.eff
    launched = kernels * s.rt.kernel_factor(s.design.framework)
    us = launched * e.kernel_us + layers * e.layer_sync_us + moe_layers * e.moe_layer_sync_us
    return overhead_cost(us * 1e-6)


def fixed_overhead(s: Setup) -> Cost:
    """Fixed GPU time of one whole forward pass (every kernel of every layer and the step)."""
    a = s.arch
    return kernel_overhead(s, kernels_per_step(a), a.num_layers, a.num_moe_layers)


def attention_overhead(s: Setup) -> Cost:
    """Fixed time of the attention halves of all layers (AFD attention side)."""
    a = s.arch
    return kernel_overhead(s, attention_kernels_per_step(a), a.num_layers, 0.0)


def ffn_overhead(s: Setup) -> Cost:
    """Fixed time of the FFN halves of all layers (AFD FFN side)."""
    a = s.arch
    return kernel_overhead(s, ffn_kernels_per_step(a), a.num_layers, a.num_moe_layers)


def host_overlapped(s: Setup, gpu: Cost, seqs: Array) -> Cost:
    """The step with the framework's host work added: ``gpu + host - overlap * min(gpu, host)``.

    Host work per step (scheduling, input preparation, sampling, output processing) is
    ``step + seqs * per_seq`` (``Runtime.framework``). An overlap scheduler prepares step n+1
    while the GPU runs step n, so at ``overlap = 1`` the step takes ``max(gpu, host)``; without
    one it takes ``gpu + host``. ``static`` (no framework, SRAM-first chips) adds nothing."""
    step, per_seq, overlap = s.rt.framework(s.design.framework)
    host = step + seqs * per_seq
    hidden = overlap * jnp.minimum(gpu.total, host)
    return gpu + overhead_cost(host - hidden)


def forward_cost(s: Setup, segs: tuple[Segment, ...], tokens_out: Array) -> Cost:
    """Seconds for one forward pass of ``segs`` (per DP rank) through the whole model."""
    a, d = s.arch, s.design
    tokens = sum((seg.tokens for seg in segs), start=jnp.asarray(0.0))
    attn, ffn = attention_block(s, segs, tokens), ffn_block(s, tokens)
    total = Block(attn.ops + ffn.ops, attn.comm + ffn.comm).overlapped(s)
    handoff = send_recv_time(
        tokens * a.hidden_size * ACT_BYTES, s.hw, s.eff, s.rt, d.tp * d.dp >= s.hw.scaleup_domain
    )
    total = total + network_cost(handoff * (d.pp - 1.0))
    total = total + logits(s, tokens_out) + embedding(s, tokens)
    seqs = sum((seg.seqs for seg in segs), start=jnp.asarray(0.0))
    return host_overlapped(s, total + fixed_overhead(s), seqs)


def draft_cost(s: Setup, seg: Segment, draft_tokens: Array) -> Cost:
    """Cost of proposing ``draft_tokens`` per sequence with an MTP module (DeepSeek-V3 §2.2) or an
    EAGLE-style head: one decoder layer of the target's shape plus logits, run once per draft
    token, sequentially. For MoE targets the layer is an MoE layer (as DeepSeek's MTP module)."""
    a = s.arch
    one = Segment(seg.seqs, jnp.ones_like(seg.q), seg.past, seg.absorbed)
    tokens = one.tokens
    layer = attention_projections(s, tokens) + attention_core(s, (one,), sliding=False)
    layer = layer + kvp_combine(s, tokens)
    experts, imbalance = moe_experts(s, tokens)
    moe = experts + dense_mlp(s, tokens, a.num_shared_experts * a.shared_expert_intermediate_size)
    moe = moe + moe_communication(s, tokens, imbalance)
    is_moe = a.num_experts > 0
    mlp = dense_mlp(s, tokens, a.intermediate_size)
    ffn = select_cost(is_moe, moe, mlp)
    # One decoder layer plus the LM head and sampling per draft token, each kernel paying its
    # fixed time (the draft runs inside the same CUDA graph as the target step).
    fixed = kernel_overhead(s, layer_kernels(a, is_moe) + 2.0, 1.0, jnp.where(is_moe, 1.0, 0.0))
    per_token = layer + ffn + logits(s, tokens) + fixed
    return per_token.scale(draft_tokens)
