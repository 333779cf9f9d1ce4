"""How many kernels one engine step launches, by layer type: the fixed cost that dominates
small-batch decode.

At batch 1 a decode step moves a few GB in tens to hundreds of kernels, so each kernel's fixed
time (launch gap inside a CUDA graph, ramp-up and tail of its wave, the wait on the previous
kernel: ``Efficiency.kernel_us``) adds up to a large share of the step. We count the kernels
that a fused, CUDA-graph'd engine (TensorRT-LLM / SGLang with FlashInfer or trtllm-gen kernels)
launches per layer, so one per-kernel constant explains a Llama-8B layer on one GPU and a
DeepSeek layer on eight (which also pays its collectives' latency, ``collectives.py``):

* GQA attention: fused residual-add + RMSNorm, QKV GEMM, RoPE + KV-cache write, attention,
  O projection: **5** (the TP all-reduce is a collective, priced separately).
* MLA attention, absorbed (DeepSeek-V3 inference code / FlashMLA path): RMSNorm, fused q_a +
  kv_a GEMM, q_a RMSNorm, kv_a RMSNorm, q_b GEMM, W_UK absorption BMM, RoPE + latent-cache
  write, MLA attention, W_UV BMM, O projection: **10**.
* Dense gated MLP: fused residual-add + RMSNorm, gate/up GEMM, SiLU x mul, down GEMM: **4**.
* MoE layer: fused residual-add + RMSNorm, router GEMM, top-k softmax, token permute (or
  dispatch), grouped GEMM 1, activation, grouped GEMM 2, unpermute + weighted sum (or
  combine): **8**, plus **3** for shared experts (gate/up, activation, down).
* Per step: embedding gather, final RMSNorm, LM head GEMM, sampling: **4**.

Cross-check: Llama-3.2-1B (16 layers) counts 16 x 9 + 4 = 148 here, against 100 kernels per
step in the CUDA-graph + PDL baseline of msaroufim/megakernels-vs-cuda-graphs (which fuses
RoPE into attention and the activation into the GEMM: 16 x 6 + 4). The per-kernel time is
fitted on such public step timings and on small-GEMM timings together
(``conf/calibration/kernels/``), so the count and the constant are calibrated as one product.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array

from .architecture import Architecture

GQA_ATTENTION_KERNELS = 5.0
MLA_ATTENTION_KERNELS = 10.0
DENSE_MLP_KERNELS = 4.0
MOE_KERNELS = 8.0
SHARED_EXPERT_KERNELS = 3.0
STEP_KERNELS = 4.0


def attention_kernels(arch: Architecture) -> Array:
    """Kernels of one layer's attention half."""
    return jnp.where(arch.mla > 0, MLA_ATTENTION_KERNELS, GQA_ATTENTION_KERNELS)


def moe_kernels(arch: Architecture) -> Array:
    """Kernels of one MoE layer's FFN half (routed + shared experts)."""
    return MOE_KERNELS + jnp.where(arch.num_shared_experts > 0, SHARED_EXPERT_KERNELS, 0.0)


def ffn_kernels_per_step(arch: Architecture) -> Array:
    """Kernels of the FFN halves of all layers (dense MLPs and MoE layers)."""
    return arch.num_mlp_dense_layers * DENSE_MLP_KERNELS + arch.num_moe_layers * moe_kernels(arch)


def attention_kernels_per_step(arch: Architecture) -> Array:
    return arch.num_layers * attention_kernels(arch)


def kernels_per_step(arch: Architecture) -> Array:
    """Every kernel of one forward pass through all layers (one pipeline micro-batch)."""
    return attention_kernels_per_step(arch) + ffn_kernels_per_step(arch) + STEP_KERNELS


def layer_kernels(arch: Architecture, moe: Array) -> Array:
    """Kernels of one decoder layer (as an MTP/EAGLE draft layer): MoE or dense FFN."""
    return attention_kernels(arch) + jnp.where(moe, moe_kernels(arch), DENSE_MLP_KERNELS)


__all__ = [
    "attention_kernels",
    "attention_kernels_per_step",
    "ffn_kernels_per_step",
    "kernels_per_step",
    "layer_kernels",
    "moe_kernels",
]
