"""FLOPs, bytes and time of the operations of one transformer layer on one GPU.

Work is described per DP rank by :class:`Segment` s: ``seqs`` sequences each adding ``q`` new
tokens on top of ``past`` cached ones (decode: q = 1 + draft tokens; prefill: q = uncached
prompt tokens, past = cached prefix). Counts may be fractional: steady-state averages.

Sharding (Megatron-style, one stage of ``pp``): attention and dense-MLP weights split ``tp``
ways and are replicated over ``dp`` ranks; routed experts are spread over all ``tp * dp`` GPUs
of the stage (``ep``-way expert parallel times ``moe_tp``-way tensor parallel within experts).
GQA KV heads split ``min(tp, n_kv)`` ways; the MLA latent is replicated over TP ranks.

KV-parallel decode (Helix: Bhatia et al., "Helix Parallelism: Rethinking Sharding Strategies for
Interactive Multi-Million-Token LLM Decoding", NVIDIA, arXiv:2507.07120, 2025): with
``kvp > 1`` each TP group of ``tp`` GPUs is ``kvp`` slices of ``attention_tp = tp / kvp`` GPUs.
A slice holds ``1 / kvp`` of every sequence's KV (split along the sequence), attends over it
with ``attention_tp``-way head parallelism (so its QKV projections are replicated ``kvp``
times), and the slices' partial outputs and log-sum-exp statistics are combined by one
all-to-all per layer (``step.kvp_combine``); the output projection and everything after it
stay ``tp``-way. FLOPs per GPU are unchanged (``kvp`` x the heads over ``1 / kvp`` of the
keys); KV bytes per GPU fall ``kvp``-fold where TP alone replicates them (the MLA latent, GQA
beyond ``n_kv`` ranks).

FLOP conventions: a GEMM of an ``m x k`` by ``k x n`` matrix costs ``2 m k n``; attention costs
``4 * head_dim`` per (query, key) pair per head (QK^T and PV), causal within new tokens.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
from jax import Array

from .architecture import Architecture
from .design import Design, bytes_per_element
from .efficiency import Efficiency, Runtime
from .hardware import Hardware
from .numerics import safe_div, safe_pow
from .roofline import Cost, gemm_efficiency, op_cost

ACT_BYTES = 2.0  # activations and collectives in BF16


class Segment(NamedTuple):
    seqs: Array
    q: Array
    past: Array
    absorbed: bool = True  # MLA: decode-style absorbed attention (static)

    @property
    def tokens(self) -> Array:
        return self.seqs * self.q


class Setup(NamedTuple):
    """Everything fixed about one design point: what runs where, how well."""

    arch: Architecture
    hw: Hardware
    eff: Efficiency  # already selected for hw's generation
    rt: Runtime
    design: Design


def kv_bytes_per_token_layer(arch: Architecture, kv_bits: Array) -> Array:
    """KV-cache bytes one token occupies in one (full-attention) layer, whole model width."""
    per_elem = bytes_per_element(kv_bits)
    gqa = 2.0 * arch.num_kv_heads * arch.head_dim
    mla = arch.kv_lora_rank + arch.qk_rope_head_dim  # workloads.md §4: 576 for DeepSeek-V3
    return jnp.where(arch.mla > 0, mla, gqa) * per_elem


def kv_shards(arch: Architecture, tp: Array, kvp: Array | float = 1.0) -> Array:
    """Ways the KV cache of one layer is split over a TP group of ``tp`` GPUs in ``kvp``
    KV-parallel slices: by sequence ``kvp`` ways, and inside a slice of ``tp / kvp`` GPUs by
    GQA KV head (``min(tp / kvp, n_kv)``; the MLA latent is one head, replicated)."""
    kvp = jnp.maximum(kvp, 1.0)
    heads = jnp.where(
        arch.mla > 0, 1.0, jnp.clip(jnp.minimum(tp / kvp, arch.num_kv_heads), 1.0, None)
    )
    return heads * kvp


def attention_params_per_gpu(arch: Architecture, d: Design) -> Array:
    """Attention weights of one layer on one GPU: the output projection split ``tp`` ways, the
    rest (QKV / latent projections) ``attention_tp`` ways, i.e. replicated over KV slices."""
    out = arch.attention_output_params()
    return (arch.attention_params_per_layer() - out) / d.attention_tp + out / d.tp


def _gemm(
    s: Setup,
    m: Array,
    params: Array,
    weight_bits: Array,
    k_in: Array,
    n_out: Array,
    compute_bits: Array | None = None,
) -> Cost:
    """One (possibly sharded) GEMM: ``m`` tokens through ``params`` weights on this GPU.
    ``compute_bits`` (default: the weights') picks the tensor peak and its efficiency."""
    eff, hw = s.eff, s.hw
    bits = weight_bits if compute_bits is None else compute_bits
    flops = 2.0 * m * params
    rate_c = hw.peak_flops(bits) * gemm_efficiency(m, eff.gemm_mfu(bits), eff.gemm_half_tokens)
    nbytes = params * bytes_per_element(weight_bits) + m * (k_in + n_out) * ACT_BYTES
    return op_cost(flops, nbytes, rate_c, hw.mem_bandwidth * eff.mbu)


def attention_projections(s: Setup, tokens: Array) -> Cost:
    a, d = s.arch, s.design
    params = attention_params_per_gpu(a, d)
    width = a.hidden_size
    return _gemm(s, tokens, params, d.weight_bits, width, width / d.tp, d.gemm_bits)


def attention_core(s: Setup, segs: tuple[Segment, ...], sliding: bool) -> Cost:
    """Score/softmax/value work and KV-cache traffic for one layer (full or sliding window)."""
    a, d, hw, eff = s.arch, s.design, s.hw, s.eff
    # With KV parallelism a GPU runs kvp x the heads over 1/kvp of every sequence's keys.
    heads = a.num_attention_heads / d.attention_tp
    key_share = 1.0 / jnp.maximum(d.kvp, 1.0)
    kv_layer = kv_bytes_per_token_layer(a, d.kv_bits) / kv_shards(a, d.tp, d.kvp)
    window = jnp.where(a.sliding_window > 0, a.sliding_window, 1e12)
    flops_decode = jnp.asarray(0.0)
    flops_prefill = jnp.asarray(0.0)
    nbytes = jnp.asarray(0.0)
    for seg in segs:
        if sliding:
            keys = jnp.minimum(window, seg.past + 0.5 * (seg.q + 1.0))
            pairs = seg.seqs * seg.q * keys
            cached = seg.seqs * jnp.minimum(window, seg.past + seg.q)
        else:
            pairs = seg.seqs * (seg.q * seg.past + 0.5 * seg.q * (seg.q + 1.0))
            cached = seg.seqs * (seg.past + seg.q)
        if seg.absorbed:
            # Absorbed MLA (DeepSeek-V2 §2.1.2): scores and values against the 576-wide latent.
            per_pair_mla = 2.0 * (a.kv_lora_rank + a.qk_rope_head_dim) + 2.0 * a.kv_lora_rank
            extra_mla = 0.0
        else:
            # Prefill MLA: decompress K/V of every cached position, then ordinary attention.
            per_pair_mla = 2.0 * (a.qk_nope_head_dim + a.qk_rope_head_dim) + 2.0 * a.v_head_dim
            extra_mla = (
                2.0 * seg.seqs * seg.past * a.kv_lora_rank * (a.qk_nope_head_dim + a.v_head_dim)
            )
        per_pair = jnp.where(a.mla > 0, per_pair_mla, 4.0 * a.head_dim)
        seg_flops = (pairs * heads * per_pair + jnp.where(a.mla > 0, extra_mla * heads, 0.0)) * (
            key_share
        )
        if seg.absorbed:
            flops_decode = flops_decode + seg_flops
        else:
            flops_prefill = flops_prefill + seg_flops
        q_bytes = seg.tokens * heads * a.head_dim * ACT_BYTES * 2.0  # read q, write o
        nbytes = nbytes + cached * kv_layer + q_bytes
    # An FP8 KV cache runs FP8 attention math on FP8-capable parts (TRT-LLM FP8 context FMHA,
    # XQA and trtllm-gen MLA generation kernels); otherwise 16-bit.
    attn_bits = jnp.where(d.kv_bits <= 8.0, 8.0, 16.0)
    flops = flops_prefill + flops_decode
    rate_c = hw.peak_flops(attn_bits) * eff.attn_mfu
    return op_cost(flops, nbytes, rate_c, hw.mem_bandwidth * eff.mbu)


def dense_mlp(s: Setup, tokens: Array, width: Array) -> Cost:
    """Gated MLP of intermediate ``width`` (dense layer or shared experts), TP-sharded."""
    a, d = s.arch, s.design
    params = 3.0 * a.hidden_size * width / d.tp
    k_in, n_out = a.hidden_size + width / d.tp, width / d.tp + a.hidden_size
    return _gemm(s, tokens, params, d.weight_bits, k_in, n_out, d.gemm_bits)


def moe_experts(s: Setup, tokens: Array) -> tuple[Cost, Array]:
    """Routed experts on one GPU for ``tokens`` per DP rank; returns (cost, imbalance factor)."""
    a, d, rt = s.arch, s.design, s.rt
    experts = jnp.maximum(a.num_experts, 1.0)
    group_tokens = tokens * d.dp  # every token of the stage is routed somewhere in tp*dp GPUs
    routed = group_tokens * a.experts_per_token
    # Max/mean load grows with the number of EP ranks (workloads.md §6: ~1.2 at EP32-72).
    imbalance = 1.0 + (rt.moe_imbalance - 1.0) * (1.0 - safe_div(1.0, d.ep, 1.0))
    gpu_routed = routed * imbalance / (d.tp * d.dp)
    # Only experts that receive at least one token stream their weights: with uniform routing an
    # expert is idle with probability (1 - k/E)^T (matters for small-batch MoE decode).
    p_idle = safe_pow(jnp.clip(1.0 - a.experts_per_token / experts, 0.0, 1.0), group_tokens)
    local_experts = experts / d.ep
    params = local_experts * (1.0 - p_idle) * a.expert_params() / d.moe_tp
    # GEMM M dimension: tokens per *active* expert (idle experts run no GEMM at all).
    m_expert = jnp.maximum(safe_div(routed, experts * (1.0 - p_idle)), 1.0)
    eff, hw = s.eff, s.hw
    flops = 2.0 * gpu_routed * 3.0 * a.hidden_size * a.moe_intermediate_size
    mfu = gemm_efficiency(m_expert, eff.gemm_mfu(d.gemm_bits), eff.gemm_half_tokens)
    width = a.moe_intermediate_size / d.moe_tp
    nbytes = (
        params * bytes_per_element(d.weight_bits)
        + gpu_routed * (2.0 * a.hidden_size + 3.0 * width) * ACT_BYTES
    )
    rate_c = hw.peak_flops(d.gemm_bits) * mfu * eff.moe_eff
    cost = op_cost(flops, nbytes, rate_c, hw.mem_bandwidth * eff.mbu * eff.moe_eff)
    router = _gemm(s, tokens, a.router_params(), jnp.asarray(16.0), a.hidden_size, a.num_experts)
    return cost + router, imbalance


def logits(s: Setup, tokens_out: Array) -> Cost:
    """Output head (kept in BF16 by common FP8/FP4 recipes) for tokens that need logits."""
    a, d = s.arch, s.design
    params = a.vocab_size * a.hidden_size / d.tp
    return _gemm(s, tokens_out, params, jnp.asarray(16.0), a.hidden_size, 2.0 * a.vocab_size / d.tp)


def elementwise(s: Setup, tokens: Array) -> Cost:
    """Norms, residual adds, rotary embedding and the gated activation of one layer: passes over
    the token activations that are memory-bound on every accelerator here. Engines fuse them
    (fused add+RMSNorm twice: read 2d, write d each; SwiGLU in one kernel that writes one row of
    this GPU's MLP shard), so we count 6d + width elements per token. Their few FLOPs per byte
    run on vector units and are not counted."""
    a, d = s.arch, s.design
    width = jnp.maximum(a.intermediate_size, a.moe_intermediate_size * a.experts_per_token) / d.tp
    nbytes = tokens * (6.0 * a.hidden_size + width) * ACT_BYTES
    return op_cost(
        jnp.zeros_like(nbytes),
        nbytes,
        s.hw.peak_flops(jnp.asarray(16.0)),
        s.hw.mem_bandwidth * s.eff.mbu,
    )


def embedding(s: Setup, tokens: Array) -> Cost:
    """Gather of the input embeddings (one BF16 row of width d per token)."""
    nbytes = tokens * s.arch.hidden_size * ACT_BYTES * 2.0
    return op_cost(
        jnp.zeros_like(nbytes),
        nbytes,
        s.hw.peak_flops(jnp.asarray(16.0)),
        s.hw.mem_bandwidth * s.eff.mbu,
    )
