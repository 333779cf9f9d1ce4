"""Time of one engine step: a forward pass over a batch of segments through every layer.

One step runs all ``num_layers`` layers (over ``pp`` stages in sequence for one micro-batch),
hands activations between stages, computes logits for the tokens that need them, and pays the
engine's fixed costs (per-layer launch gaps, per-step scheduling and sampling). Per layer:

    attention projections + attention core + [TP all-reduce]
    + dense MLP + [TP all-reduce]                                   (dense layers)
    + router + routed experts + shared experts + [EP all-to-all]    (MoE layers)

Collectives are not overlapped with compute here (engines overlap some with two micro-batches;
the calibrated link efficiency absorbs the average).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
from jax import Array

from .collectives import all_reduce_time, moe_all_to_all_time, send_recv_time
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


class Block(NamedTuple):
    """Work of one half of every layer: kernels (``ops``) and collectives (``comm``)."""

    ops: Cost
    comm: Cost

    def overlapped(self, s: Setup) -> Cost:
        # Overlap hides part of the communication behind compute (never more than either).
        hidden = s.eff.comm_overlap * jnp.minimum(self.ops.total, self.comm.total)
        return self.ops + self.comm + network_cost(-hidden)


def attention_block(s: Setup, segs: tuple[Segment, ...], tokens: Array) -> Block:
    """Attention half of all layers (projections, core, norms) and its TP all-reduces."""
    a, d = s.arch, s.design
    full_layers = a.num_layers - a.num_sliding_layers
    ops = attention_projections(s, tokens).scale(a.num_layers)
    ops = ops + attention_core(s, segs, sliding=False).scale(full_layers)
    ops = ops + attention_core(s, segs, sliding=True).scale(a.num_sliding_layers)
    ops = ops + elementwise(s, tokens).scale(a.num_layers)
    comm = _tp_all_reduce(s, tokens, d.tp).scale(a.num_layers)
    return Block(ops, comm)


def ffn_block(s: Setup, tokens: Array) -> Block:
    """FFN half of all layers: dense MLPs, routed + shared experts, their collectives."""
    a, d = s.arch, s.design
    dense_ops = dense_mlp(s, tokens, a.intermediate_size).scale(a.num_mlp_dense_layers)
    dense_comm = _tp_all_reduce(s, tokens, d.tp).scale(a.num_mlp_dense_layers)
    experts, imbalance = moe_experts(s, tokens)
    shared = dense_mlp(s, tokens, a.num_shared_experts * a.shared_expert_intermediate_size)
    moe_ops = (experts + shared).scale(a.num_moe_layers)
    # Expert outputs are reduced over MoE-TP ranks; with DP attention the token set is dp x wider.
    moe_reduce = _tp_all_reduce(
        s, tokens * jnp.maximum(1.0, safe_div(d.moe_tp, d.tp, 1.0)), d.moe_tp
    )
    moe_comm = (_moe_all_to_all(s, tokens, imbalance) + moe_reduce).scale(a.num_moe_layers)
    return Block(dense_ops + moe_ops, dense_comm + moe_comm)


def fixed_overhead(s: Setup, seqs: Array) -> Cost:
    """Engine costs independent of the work: launch gaps per layer, scheduling per step and per
    running sequence."""
    a = s.arch
    fixed = a.num_layers * s.eff.layer_overhead_us * 1e-6 + s.eff.step_overhead_ms * 1e-3
    fixed = fixed + a.num_moe_layers * s.eff.moe_layer_overhead_us * 1e-6
    fixed = fixed + seqs * s.eff.seq_overhead_us * 1e-6
    return overhead_cost(fixed)


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
    return total + fixed_overhead(s, seqs)


def draft_cost(s: Setup, seg: Segment, draft_tokens: Array) -> Cost:
    """Cost of proposing ``draft_tokens`` per sequence with an MTP module (DeepSeek-V3 §2.2) or an
    EAGLE-style head: one decoder layer of the target's shape plus logits, run once per draft
    token, sequentially. For MoE targets the layer is an MoE layer (as DeepSeek's MTP module)."""
    a = s.arch
    one = Segment(seg.seqs, jnp.ones_like(seg.q), seg.past, seg.absorbed)
    tokens = one.tokens
    layer = attention_projections(s, tokens) + attention_core(s, (one,), sliding=False)
    experts, imbalance = moe_experts(s, tokens)
    moe = experts + dense_mlp(s, tokens, a.num_shared_experts * a.shared_expert_intermediate_size)
    moe = moe + _moe_all_to_all(s, tokens, imbalance)
    is_moe = a.num_experts > 0
    mlp = dense_mlp(s, tokens, a.intermediate_size)
    ffn = select_cost(is_moe, moe, mlp)
    per_token = layer + ffn + logits(s, tokens) + overhead_cost(s.eff.layer_overhead_us * 1e-6)
    return per_token.scale(draft_tokens)
