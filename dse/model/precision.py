"""Accuracy cost of low precision per tensor class (weights, GEMM activations, KV cache).

A design's ``accuracy_penalty_pct`` is the sum of the per-class penalties below, a rough
expected drop on key benchmarks relative to BF16, so that a search can bound it (e.g. "at most
1 %"). These are literature estimates, not measurements of any one model (workloads.md §7):

* FP8 weights and activations are near-lossless for large LLMs (DeepSeek-V3 trains in FP8,
  arXiv:2412.19437): 0.
* NVFP4 (W4A4) post-training quantization of large models stays "within ~1 % of FP8" (NVIDIA
  NVFP4 blog): 1.0 for FP4 weights, of which activations in FP4 are counted as 0.5 of it when
  only weights are FP4 (W4A8/W4A16 keeps activations wide: ~0.5).
* FP8 KV cache: "negligible" (SGLang GB200 part 2, FP8 attention); 0.
* FP4 KV cache: ESTIMATE 1.0 (NVIDIA reports NVFP4 KV within ~1 % on its benchmarks; less
  public evidence than for weights).

Models trained for a format (gpt-oss ships MXFP4 experts) lose nothing; the table does not
know that, so treat the number as a conservative screen, and override it where you know better.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array

FP4_WEIGHT_PENALTY_PCT = 0.5
FP4_ACTIVATION_PENALTY_PCT = 0.5
FP4_KV_PENALTY_PCT = 1.0


def accuracy_penalty_pct(weight_bits: Array, act_bits: Array, kv_bits: Array) -> Array:
    """Expected benchmark drop (percentage points) of a precision choice (act_bits 0 = weights)."""
    acts = jnp.where(act_bits > 0, act_bits, weight_bits)
    return (
        jnp.where(weight_bits <= 4.0, FP4_WEIGHT_PENALTY_PCT, 0.0)
        + jnp.where(acts <= 4.0, FP4_ACTIVATION_PENALTY_PCT, 0.0)
        + jnp.where(kv_bits <= 4.0, FP4_KV_PENALTY_PCT, 0.0)
    )
