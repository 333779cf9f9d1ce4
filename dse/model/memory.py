"""Per-GPU memory: weights + KV cache + activation workspace + runtime reserve vs capacity.

The largest batch that fits is a model output (continuous, so it can be differentiated);
designs whose weights alone do not fit are infeasible with a reason, never NaN.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array

from .design import bytes_per_element
from .layer import (
    ACT_BYTES,
    Setup,
    attention_params_per_gpu,
    kv_bytes_per_token_layer,
    kv_shards,
)
from .numerics import safe_div


def weight_bytes_per_gpu(
    s: Setup, with_draft: Array, attention: float = 1.0, ffn: float = 1.0
) -> Array:
    """Bytes of weights one GPU holds (the embedding/head share is that of a pipeline end).

    ``attention`` / ``ffn`` (0 or 1) select the halves of every layer this pool holds: with
    attention-FFN disaggregation the attention pool keeps attention weights, embeddings and the
    KV cache, the FFN pool the dense MLPs and experts (MegaScale-Infer, workloads.md §5)."""
    a, d = s.arch, s.design
    per_elem = bytes_per_element(d.weight_bits)
    # QKV projections are replicated over KV-parallel slices (layer.attention_params_per_gpu).
    attn = a.num_layers * attention_params_per_gpu(a, d)
    dense = a.num_mlp_dense_layers * a.dense_mlp_params() / d.tp
    moe = a.num_moe_layers * (
        a.num_experts * a.expert_params() / (d.tp * d.dp)
        + (a.shared_expert_params() + a.router_params()) / d.tp
    )
    layers = (attention * attn + ffn * (dense + moe)) * per_elem / d.pp
    # Embedding and output head stay BF16; with pp > 1 they sit on different stages.
    head_copies = jnp.where(d.pp > 1.0, 1.0, 2.0 - a.tie_word_embeddings)
    embed = head_copies * a.vocab_size * a.hidden_size * ACT_BYTES / d.tp
    mtp_ffn = jnp.where(a.num_experts > 0, a.moe_layer_params() / d.dp, a.dense_mlp_params())
    mtp_layer = attention_params_per_gpu(a, d) + mtp_ffn / d.tp
    draft = jnp.where(with_draft, mtp_layer * per_elem, 0.0)
    return layers + attention * (embed + draft)


def kv_bytes_per_sequence_gpu(s: Setup, context: Array) -> Array:
    """KV bytes one sequence of ``context`` tokens occupies on each GPU that holds it (a
    ``1 / kvp`` slice of it with KV-parallel decode)."""
    a, d = s.arch, s.design
    per_layer = kv_bytes_per_token_layer(a, d.kv_bits) / kv_shards(a, d.tp, d.kvp)
    window = jnp.where(a.sliding_window > 0, a.sliding_window, context)
    full = (a.num_layers - a.num_sliding_layers) * context
    sliding = a.num_sliding_layers * jnp.minimum(window, context)
    return per_layer * (full + sliding) / d.pp


# SRAM-first chips stream activations through a static schedule in small chunks; their whole
# memory is ~0.2-0.5 GB, so an 8K-token workspace would not fit (ASSUMPTION: 256 tokens).
SRAM_CHUNK_TOKENS = 256.0


def workspace_bytes(s: Setup) -> Array:
    """Activation workspace for one chunk of tokens (engines cap step tokens, e.g. 8192)."""
    a, d = s.arch, s.design
    widest = jnp.maximum(a.intermediate_size, a.moe_intermediate_size * a.experts_per_token)
    chunk = jnp.where(s.hw.sram_first > 0, SRAM_CHUNK_TOKENS, s.rt.chunk_tokens)
    return chunk * (6.0 * a.hidden_size + 3.0 * widest / d.tp) * ACT_BYTES


# SRAM-first chips are allocated statically by the compiler: no allocator fragmentation or
# framework reserve, only program/instruction space (ASSUMPTION: 2 % of SRAM).
SRAM_RESERVE_FRACTION = 0.02


def usable_bytes(s: Setup) -> Array:
    reserve = jnp.where(s.hw.sram_first > 0, SRAM_RESERVE_FRACTION, s.rt.reserve_fraction)
    return s.hw.mem_bytes * (1.0 - reserve)


def max_sequences(s: Setup, context: Array, with_draft: Array, ffn: float = 1.0) -> Array:
    """Largest number of sequences (whole instance) whose KV fits beside the weights, capped by
    the engine's per-rank batch limit; 0 when even the weights do not fit. ``ffn=0``: the FFN
    half of the weights lives in another pool (attention-FFN disaggregation)."""
    d = s.design
    free = usable_bytes(s) - weight_bytes_per_gpu(s, with_draft, ffn=ffn) - workspace_bytes(s)
    per_rank = safe_div(jnp.maximum(free, 0.0), kv_bytes_per_sequence_gpu(s, context))
    # With pp > 1 every stage holds all the rank's sequences (for its own layers).
    return jnp.minimum(per_rank, s.rt.max_batch_per_rank) * d.dp


def memory_per_gpu(
    s: Setup, sequences: Array, context: Array, with_draft: Array, ffn: float = 1.0
) -> Array:
    """Bytes used on each GPU with ``sequences`` (whole instance) of ``context`` tokens."""
    per_rank = sequences / s.design.dp
    return (
        weight_bytes_per_gpu(s, with_draft, ffn=ffn)
        + workspace_bytes(s)
        + per_rank * kv_bytes_per_sequence_gpu(s, context)
    )
