"""SRAM-first accelerators (Groq LPU v1, Groq 3 LPX): how many chips a model needs.

On SRAM-first chips the on-chip SRAM is the only memory (``Hardware.mem_capacity_gb`` holds
it and ``sram_first`` is 1), so the whole model, weights and KV cache, is sharded over enough
chips: layers are pipelined across chips (``pp`` stages) and each stage's tensors are split
``tp`` ways (workloads.md §8; Groq ISCA'22). Everything else uses the same roofline as GPUs:
``Hardware.mem_bandwidth_tbs`` is the SRAM bandwidth, ``scaleup_*`` the chip-to-chip links,
and the ``lpu`` calibration generation carries the compiler-scheduled chips' efficiencies
(``efficiency.GENERATION_PRIOR``). Per-token latency is the sum over stages of compute,
SRAM streaming, the intra-stage collectives and the hops; throughput is the sequences in
flight over that latency (``serving._decode`` with ``pp`` micro-batches in the pipeline).

Capacity, not bandwidth, binds (hardware.md §9): a 1 T-parameter FP8 model needs about
2,000 Groq 3 LPUs (~8 LPX racks) for weights alone, so 100K+-token agentic KV caches stay on
GPU HBM and LPX serves as a decode or FFN pool beside GPUs (attention-FFN disaggregation).
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array

from .architecture import Architecture
from .design import bytes_per_element
from .hardware import Hardware
from .layer import ACT_BYTES, kv_bytes_per_token_layer
from .memory import SRAM_RESERVE_FRACTION


def model_weight_bytes(arch: Architecture, weight_bits: Array, ffn_only: bool = False) -> Array:
    """All weights of the model at ``weight_bits`` (embeddings and head stay BF16)."""
    per_elem = bytes_per_element(weight_bits)
    attn = arch.num_layers * arch.attention_params_per_layer()
    dense = arch.num_mlp_dense_layers * arch.dense_mlp_params()
    moe = arch.num_moe_layers * arch.moe_layer_params()
    if ffn_only:
        return (dense + moe) * per_elem
    embed = (2.0 - arch.tie_word_embeddings) * arch.vocab_size * arch.hidden_size * ACT_BYTES
    return (attn + dense + moe) * per_elem + embed


def chips_needed(
    arch: Architecture,
    hw: Hardware,
    weight_bits: Array,
    kv_bits: Array,
    kv_tokens: Array,
    ffn_only: bool = False,
) -> Array:
    """Fewest chips whose usable SRAM holds the weights plus ``kv_tokens`` tokens of KV cache
    (capacity only; a real layout rounds up to whole stages and racks)."""
    usable = hw.mem_bytes * (1.0 - SRAM_RESERVE_FRACTION)
    kv = kv_tokens * kv_bytes_per_token_layer(arch, kv_bits) * arch.num_layers
    return jnp.ceil((model_weight_bytes(arch, weight_bits, ffn_only) + kv) / usable)


def racks_needed(chips: Array, hw: Hardware) -> Array:
    """Whole scale-up domains (LPX racks of 256) for ``chips``."""
    return jnp.ceil(chips / jnp.maximum(hw.scaleup_domain, 1.0))
