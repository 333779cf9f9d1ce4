"""The design point: parallelism, precision, workload shape and phase of one serving instance.

All fields are float64 scalars so that a batch of designs is one pytree of arrays and the model
is differentiable in every continuous field (batch, lengths, spec acceptance, pool sizes).
Discrete choices (phase, mode) are float codes compared with ``==``; they are never
differentiated.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jax import Array

PHASES = ("prefill", "decode", "serve")
MODES = ("agg", "disagg")
# How a benchmark's client reaches the engine. ``http``: through the framework's API server
# (tokenization, HTTP, streaming: vLLM/SGLang/trtllm-serve benchmarks, InferenceX, NIM), so
# each request's TTFT carries the framework's request path (``Runtime.request_seconds``).
# ``in_process``: MLPerf LoadGen (and trtllm-bench) call the system under test in process with
# pre-tokenized queries and time the first-token callback (MLPerf Inference rules, LoadGen), so
# no API server or tokenizer is on the path.
HARNESSES = ("http", "in_process")
DTYPE_BITS = {"fp4": 4.0, "fp8": 8.0, "bf16": 16.0, "fp16": 16.0}


# Bytes per element including block-scale overhead: NVFP4 carries one FP8 scale per 16 values
# (+0.5 bit/value), MXFP4 one E8M0 scale per 32 (+0.25); we use NVFP4's 4.5 bits
# (NVIDIA NVFP4 blog; workloads.md §7). FP8 per-tensor/per-128-block scales are negligible.
def bytes_per_element(bits: Array) -> Array:
    return jnp.where(bits <= 4.0, 4.5 / 8.0, bits / 8.0)


class Design(eqx.Module):
    """One serving instance (one replica) of a model on identical accelerators.

    Parallelism: ``gpus = tp * pp * dp``; ``dp`` is attention data parallelism; MoE layers run
    ``ep``-way expert parallel over the ``tp * dp`` ranks of a stage (MoE-TP = tp*dp/ep).
    ``kvp`` (KV parallelism, Helix; divides ``tp``) splits each TP group's attention into
    ``kvp`` ranks that hold different slices of every sequence's KV cache, each running
    attention with ``tp / kvp``-way head parallelism (``attention_tp``); ``kvp = 1`` is plain TP.
    Counts (``batch``, ``concurrency``) are sequences in the whole instance, across DP ranks.
    ``concurrency == 0`` means saturating (largest batch that fits).
    """

    tp: Array
    pp: Array
    ep: Array
    dp: Array
    kvp: Array
    weight_bits: Array
    kv_bits: Array
    phase: Array  # index into PHASES
    mode: Array  # index into MODES
    batch: Array
    concurrency: Array
    isl: Array
    osl: Array
    # Shape of the request lengths (``workload.mean_decode_context``): coefficients of variation
    # of input and output tokens and their correlation; 0 = every request isl in, osl out.
    isl_cv: Array
    osl_cv: Array
    length_corr: Array
    prefix: Array
    spec_k: Array
    spec_tokens_per_step: Array  # mean tokens emitted per target step, >= 1
    prefill_gpus: Array
    decode_gpus: Array
    # GEMM activation width; 0 = same as the weights (W8A8, W4A4). W4A8 / W4A16 run on the FP8 /
    # BF16 tensor peak (hardware.md §9: NVFP4 peak only for W4A4).
    act_bits: Array
    # Serving framework: index into efficiency.FRAMEWORKS (0 static = GPU time only, 1 trtllm,
    # 2 vllm, 3 sglang); sets the host work per step and how much of it is hidden.
    framework: Array
    # Benchmark client: index into HARNESSES (0 http, 1 in_process); only a serving row's TTFT
    # reads it (``serving.py``); the system model serves through the API server.
    harness: Array

    @property
    def gpus(self) -> Array:
        return self.tp * self.pp * self.dp

    @property
    def gemm_bits(self) -> Array:
        """Operand width that sets the tensor-core peak: the wider of weights and activations."""
        return jnp.where(
            self.act_bits > 0, jnp.maximum(self.weight_bits, self.act_bits), self.weight_bits
        )

    @property
    def attention_tp(self) -> Array:
        """Head-parallel ways of attention inside one KV-parallel slice (Helix's TPA)."""
        return self.tp / jnp.maximum(self.kvp, 1.0)

    @property
    def moe_tp(self) -> Array:
        return self.tp * self.dp / jnp.maximum(self.ep, 1.0)


def make_design(**kw: float) -> Design:
    """Convenience constructor with defaults (serve, agg, TP1, bf16, 1k/1k, no speculation,
    TensorRT-LLM)."""
    defaults = dict(
        tp=1.0, pp=1.0, ep=1.0, dp=1.0, kvp=1.0, weight_bits=16.0, kv_bits=16.0, phase=2.0,
        mode=0.0,
        batch=1.0, concurrency=1.0, isl=1024.0, osl=1024.0, isl_cv=0.0, osl_cv=0.0,
        length_corr=0.0, prefix=0.0, spec_k=0.0,
        spec_tokens_per_step=1.0, prefill_gpus=0.0, decode_gpus=0.0, act_bits=0.0,
        framework=1.0, harness=0.0,
    )  # fmt: skip
    unknown = set(kw) - set(defaults)
    if unknown:
        raise TypeError(f"unknown design field(s): {sorted(unknown)}")
    defaults.update(kw)
    return Design(**{k: jnp.asarray(float(v), dtype=jnp.float64) for k, v in defaults.items()})
