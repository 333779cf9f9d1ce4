"""Calibrated efficiency parameters: the few numbers fitted to public measurements.

Peak ratings come from datasheets (``Hardware``); what real kernels achieve is a fraction of
them. We keep that fraction to a handful of physically meaningful parameters per hardware
*generation* (never per data point), fitted by ``dse calibrate`` and stored with provenance in
``conf/calibration/default.yaml``:

* ``gemm_mfu_{fp4,fp8,bf16}``: best achieved fraction of dense tensor peak for large GEMMs.
* ``gemm_half_tokens``: GEMM M-size (tokens) at which efficiency is half its best (tile and
  wave quantization make small GEMMs slow; e.g. CUTLASS tiles are 64-256 rows).
* ``attn_mfu``: flash-attention fraction of the 16-bit peak (FA2/FA3 reach 35-75 %).
* ``mbu``: achieved fraction of HBM bandwidth (public engines: 0.6-0.85, hardware.md §9).
* ``link_eff``: achieved fraction of link bandwidth in collectives (NCCL busbw ~70-85 %).
* ``layer_overhead_us`` / ``step_overhead_ms``: launch gaps per layer and scheduler +
  sampling cost per engine step, which dominate small-batch decode.
* ``moe_eff``: routed-expert GEMMs relative to dense ones (grouped GEMMs over ragged
  per-expert batches with block scales, plus token permute/unpermute traffic; DeepGEMM's
  grouped kernels reach well below its dense peak at small per-expert M).
* ``moe_layer_overhead_us``: extra launch gaps of an MoE layer (router, top-k, permute, two
  grouped GEMMs, unpermute, shared expert: several times the kernels of a dense MLP).
* ``collective_latency_us``: fixed cost of one collective inside the scale-up domain (NCCL /
  custom all-reduce small-message latency, ~5-25 us on NVLink).
* ``comm_overlap``: fraction of a layer's collectives hidden behind its compute (two-micro-
  batch overlap in SGLang/DeepSeek, TRT-LLM's overlap scheduler): ``t = c + n - phi min(c, n)``.
* ``seq_overhead_us``: host work per running sequence per step (scheduling, sampling,
  detokenization, block-table updates), which grows with batch and caps saturated throughput.

Global (not per generation) runtime facts are :class:`Runtime` fields with cited defaults.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jax import Array

from ..catalog.hardware import GENERATIONS

EFFICIENCY_FIELDS = (
    "gemm_mfu_fp4",
    "gemm_mfu_fp8",
    "gemm_mfu_bf16",
    "gemm_half_tokens",
    "attn_mfu",
    "mbu",
    "link_eff",
    "layer_overhead_us",
    "step_overhead_ms",
    "seq_overhead_us",
    "moe_eff",
    "comm_overlap",
    "moe_layer_overhead_us",
    "collective_latency_us",
)

# Physically plausible starting points (also the prior of the fit). Sources: FlashAttention-3
# paper (arXiv:2407.08608: 75 % of H100 BF16 peak); hardware.md §9 (MBU 0.6-0.8); NCCL tests
# busbw on NVLink ~ 75-85 % of line rate; CUDA-graph launch gaps of a few us per kernel.
PRIOR = dict(
    gemm_mfu_fp4=0.55,
    gemm_mfu_fp8=0.65,
    gemm_mfu_bf16=0.70,
    gemm_half_tokens=48.0,
    attn_mfu=0.45,
    mbu=0.75,
    link_eff=0.75,
    layer_overhead_us=15.0,
    step_overhead_ms=1.5,
    seq_overhead_us=5.0,
    moe_eff=0.7,
    comm_overlap=0.3,
    moe_layer_overhead_us=20.0,
    collective_latency_us=10.0,
)


# Generations whose physics differs from GPUs get their own starting point; while no public
# measurement constrains them, `dse calibrate` keeps these values instead of the GPU-shared fit.
# SRAM-first chips (Groq LPU v1, Groq 3 LPX) run one compiler-scheduled static program across
# chips: no kernel launches, no host scheduler in the token loop, no DRAM page effects
# (workloads.md §8, Groq ISCA'22). The per-layer cost is set from Groq v1's public speeds
# (Llama-2-70B ~300 tok/s/user on ~576 chips, Llama-2-7B ~750, Mixtral-8x7B ~480;
# workloads.md §8): 1.3-3.3 ms per token over 32-80 layers is ~30-60 us per layer all-in, far
# more than SRAM streaming (~1-2 us), i.e. synchronisation between the chips of a layer and
# chip-to-chip hops. ``layer_overhead_us`` and ``moe_layer_overhead_us`` were set by hand to
# those three speeds (one shared value each, not per point); `tests/model/test_sram.py` checks
# them. They are the only LPU evidence: Groq 3 LPX numbers are extrapolations.
GENERATION_PRIOR: dict[str, dict[str, float]] = {
    "lpu": dict(
        gemm_mfu_fp8=0.6,
        gemm_mfu_bf16=0.6,
        # Weights stream from SRAM at ~2 B per FLOP pair (80-150 TB/s vs 0.2-1.2 PFLOP/s), so
        # batch-1 vector-matrix work is bandwidth-bound by design, not tile-starved as on GPUs.
        gemm_half_tokens=1.0,
        mbu=0.85,
        link_eff=0.9,
        layer_overhead_us=30.0,
        step_overhead_ms=0.05,
        seq_overhead_us=0.5,
        comm_overlap=0.5,
        moe_layer_overhead_us=15.0,  # data-dependent expert routing on a static schedule
        collective_latency_us=4.0,
    )
}


def generation_prior(generation: str) -> dict[str, float]:
    return {**PRIOR, **GENERATION_PRIOR.get(generation, {})}


class Efficiency(eqx.Module):
    """Efficiencies of one generation (scalars), or of all generations (arrays of shape [G])."""

    gemm_mfu_fp4: Array
    gemm_mfu_fp8: Array
    gemm_mfu_bf16: Array
    gemm_half_tokens: Array
    attn_mfu: Array
    mbu: Array
    link_eff: Array
    layer_overhead_us: Array
    step_overhead_ms: Array
    seq_overhead_us: Array
    moe_eff: Array
    comm_overlap: Array
    moe_layer_overhead_us: Array
    collective_latency_us: Array

    def select(self, generation: Array) -> Efficiency:
        """The scalar efficiencies of ``generation`` (a float index into GENERATIONS)."""
        idx = jnp.asarray(generation).astype(jnp.int32)
        return Efficiency(*[jnp.take(getattr(self, f), idx) for f in EFFICIENCY_FIELDS])

    def gemm_mfu(self, bits: Array) -> Array:
        return jnp.where(
            bits <= 4.0,
            self.gemm_mfu_fp4,
            jnp.where(bits <= 8.0, self.gemm_mfu_fp8, self.gemm_mfu_bf16),
        )


class Runtime(eqx.Module):
    """Serving-engine facts shared by all hardware (defaults cited; override in config)."""

    latency_scaleout_us: Array  # per collective over the NIC (RDMA)
    moe_imbalance: Array  # max/mean expert load at large EP without EPLB (workloads.md §6: ~1.2)
    reserve_fraction: Array  # HBM kept free of weights+KV (vLLM gpu_memory_utilization=0.9)
    max_batch_per_rank: Array  # engine cap on sequences per DP rank (TRT-LLM default 2048)
    chunk_tokens: Array  # prefill tokens per rank per engine step when saturating prefill
    spec_acceptance: Array  # default per-token acceptance when only spec_k is given


def default_runtime() -> Runtime:
    return Runtime(
        latency_scaleout_us=jnp.asarray(25.0),  # DeepEP low-latency kernels, 77-194 us incl. data
        moe_imbalance=jnp.asarray(1.2),
        reserve_fraction=jnp.asarray(0.1),
        max_batch_per_rank=jnp.asarray(2048.0),
        chunk_tokens=jnp.asarray(8192.0),
        # TRT-LLM blog 2: DeepSeek-R1 MTP nextn=3 accepts 2.82 tokens/step -> alpha ~ 0.75.
        spec_acceptance=jnp.asarray(0.75),
    )


def prior_efficiency() -> Efficiency:
    """Every generation at the prior (uncalibrated) values; shape [len(GENERATIONS)]."""
    priors = [generation_prior(g) for g in GENERATIONS]
    return Efficiency(
        *[jnp.asarray([p[f] for p in priors], dtype=jnp.float64) for f in EFFICIENCY_FIELDS]
    )
