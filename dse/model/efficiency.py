"""Calibrated efficiency parameters: the few numbers fitted to public measurements.

Peak ratings come from datasheets (``Hardware``); what real kernels achieve is a fraction of
them. dse keeps that to a handful of physically meaningful parameters per hardware
*generation* (never per data point), fitted in two levels by ``dse calibrate`` and stored with
provenance in ``conf/calibration/default.yaml``.

**Kernel level** (``KERNEL_FIELDS``), fitted on public kernel microbenchmarks alone
(``conf/calibration/kernels/*.csv``, ``dse/calibration/kernels.py``); each has an evidence
range in ``EVIDENCE`` that the fit is checked against:

* ``gemm_mfu_{fp4,fp8,bf16}``: best achieved fraction of dense tensor peak for large GEMMs.
* ``gemm_half_tokens``: GEMM M-size (tokens) at which compute efficiency is half its best
  (tile and wave quantization make small GEMMs slow; CUTLASS tiles are 64-256 rows).
* ``attn_mfu``: flash-attention fraction of the 16-bit (or FP8) peak (FA3 reaches 45-75 %).
* ``mbu``: achieved fraction of HBM bandwidth of a large memory-bound kernel.
* ``link_eff``: achieved fraction of link bandwidth in large collectives (NCCL busbw).
* ``kernel_us``: fixed time of one kernel in a CUDA-graph'd step: launch gap, ramp-up and
  tail of the wave, sync with the previous kernel (1.3 us graph launch on H100, HazyResearch).
  Every kernel of a step pays it (``dse/model/kernels.py`` counts them per layer type).
* ``collective_latency_us``: fixed cost of one all-reduce / send inside the scale-up domain
  (custom one-shot all-reduce, ~4-12 us on NVLink).
* ``a2a_latency_us``: fixed cost of one MoE dispatch or combine inside the domain (one-sided
  NVLink all-to-all: ~19 us dispatch, ~31 us combine at 1 token per rank on GB200).
* ``moe_eff``: routed-expert (grouped) GEMMs relative to dense ones.

**Serving level**: ``comm_overlap`` (fraction of a layer's collectives hidden behind compute by
two-micro-batch overlap) here, and the framework's host costs in :class:`Runtime`, fitted on
serving measurements with the kernel level held fixed.

**Hand-set, not fitted** (``FIXED_FIELDS``): ``layer_sync_us`` and ``moe_layer_sync_us``, a
per-layer synchronisation cost that GPUs do not have (0: their per-layer cost is their kernels
and collectives) but SRAM-first chips spread over hundreds of chips do (see ``GENERATION_PRIOR``).

Global (not per generation) runtime facts are :class:`Runtime` fields with cited defaults.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jax import Array

from .hardware import GENERATIONS

KERNEL_FIELDS = (
    "gemm_mfu_fp4",
    "gemm_mfu_fp8",
    "gemm_mfu_bf16",
    "gemm_half_tokens",
    "attn_mfu",
    "mbu",
    "link_eff",
    "kernel_us",
    "collective_latency_us",
    "a2a_latency_us",
    "moe_eff",
)
SERVING_FIELDS = ("comm_overlap",)
FIXED_FIELDS = ("layer_sync_us", "moe_layer_sync_us")
EFFICIENCY_FIELDS = KERNEL_FIELDS + SERVING_FIELDS + FIXED_FIELDS

# Starting points and prior centres of the fit (physically plausible values; sources in
# EVIDENCE below and conf/calibration/README.md).
PRIOR = dict(
    gemm_mfu_fp4=0.60,
    gemm_mfu_fp8=0.72,
    gemm_mfu_bf16=0.75,
    gemm_half_tokens=48.0,
    attn_mfu=0.55,
    mbu=0.85,
    link_eff=0.80,
    kernel_us=2.5,
    collective_latency_us=8.0,
    a2a_latency_us=20.0,
    moe_eff=0.8,
    comm_overlap=0.3,
    layer_sync_us=0.0,
    moe_layer_sync_us=0.0,
)

# What public microbenchmarks show for each kernel-level parameter (low, high, source). A fitted
# value outside its range is a phenomenon the model is missing, not a result: `dse calibrate`
# prints every value beside its range and tests/calibration check the shipped file against it.
EVIDENCE: dict[str, tuple[float, float, str]] = {
    "gemm_mfu_bf16": (0.51, 0.84, "MAMF torch.matmul, H100..GB200 72.9-83.8 %, MI300X 51.4 % (ml-engineering)"),
    "gemm_mfu_fp8": (0.55, 0.80, "MAMF FP8 70.9-77.6 % (ml-engineering); FBGEMM H100 row-wise 55-58 % of 1979"),
    "gemm_mfu_fp4": (0.20, 0.80, "no public NVFP4/MXFP4 per-shape table found (kernel_benchmarks.md §8): unconstrained; the serving level fits it"),
    "gemm_half_tokens": (16.0, 160.0, "small-M GEMM curves: vLLM bench_fp8_gemm H100/SM100, DeepGEMM M=64/128 (kernel_benchmarks.md §1.3)"),
    "attn_mfu": (0.28, 0.75, "FA3 430-690 TFLOPS of 989 on H100/H200; FA4 645-889 of 2250 on SM100 (kernel_benchmarks.md §2.2)"),
    "mbu": (0.75, 0.92, "FlashMLA 3000 of 3350 GB/s; DeepGEMM 2668 GB/s; megakernel 78 %; BabelStream MI300X 81 % (§3)"),
    "link_eff": (0.65, 0.93, "nccl-tests busbw 370/450 (H100), 695/900 (B300), 830/900 (B200); MI300X 313 of 448 (§4.1)"),
    "kernel_us": (1.0, 5.0, "CUDA-graph launch 1.3 us (H100); 'optimistic 5 us stalling per kernel' (HazyResearch, §6.1)"),
    "collective_latency_us": (3.5, 12.0, "custom all-reduce 3.7-11.8 us at 512 B-32 KB, tp 2-8, H100 (SGLang PR #2904, §4.3)"),
    "a2a_latency_us": (15.0, 40.0, "NVLink one-sided dispatch 18-28 us, combine 31-33 us at 1-8 tokens/rank, GB200 (§5.3)"),
    "moe_eff": (0.55, 1.0, "DeepGEMM grouped (masked 4x256) 932 vs dense M=4096 1410 TFLOPS -> 0.66; contiguous 0.95 (§1.1)"),
}  # fmt: skip


# Generations whose physics differs from GPUs get their own values; while no public
# measurement constrains them, `dse calibrate` keeps these instead of the GPU-shared fit.
# SRAM-first chips (Groq LPU v1, Groq 3 LPX) run one compiler-scheduled static program across
# chips: no kernel launches, no host scheduler in the token loop, no DRAM page effects
# (workloads.md §8, Groq ISCA'22). Their per-layer cost is synchronisation between the chips of
# a layer and chip-to-chip hops: ``layer_sync_us`` / ``moe_layer_sync_us``. Set by hand (one
# shared value each, not per point) from Groq v1's three public speeds (Llama-2-70B ~300
# tok/s/user on ~576 chips, Llama-2-7B ~750, Mixtral-8x7B ~480; workloads.md §8): 1.3-3.3 ms
# per token over 32-80 layers is ~30-40 us per layer all-in. `tests/model/test_sram.py` checks
# those speeds and says in its name that it is in-sample. Groq 3 LPX numbers are extrapolations.
GENERATION_PRIOR: dict[str, dict[str, float]] = {
    "lpu": dict(
        gemm_mfu_fp8=0.6,
        gemm_mfu_bf16=0.6,
        # Weights stream from SRAM at ~2 B per FLOP pair (80-150 TB/s vs 0.2-1.2 PFLOP/s), so
        # batch-1 vector-matrix work is bandwidth-bound by design, not tile-starved as on GPUs.
        gemm_half_tokens=1.0,
        mbu=0.85,
        link_eff=0.9,
        kernel_us=0.0,  # one static program: no kernel launches
        comm_overlap=0.5,
        collective_latency_us=4.0,
        a2a_latency_us=4.0,
        layer_sync_us=30.0,
        moe_layer_sync_us=15.0,  # data-dependent expert routing on a static schedule
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
    kernel_us: Array
    collective_latency_us: Array
    a2a_latency_us: Array
    moe_eff: Array
    comm_overlap: Array
    layer_sync_us: Array
    moe_layer_sync_us: Array

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


# Serving frameworks: the software that runs the kernels. ``static`` is no framework at all (a
# static batch timed on the GPU, or a compiler-scheduled SRAM-first chip with no host in the
# token loop); the others add host work per engine step.
FRAMEWORKS: tuple[str, ...] = ("static", "trtllm", "vllm", "sglang")
FRAMEWORK_ALIASES = {
    "static": "static", "none": "static", "kernel": "static",
    "trtllm": "trtllm", "tensorrt-llm": "trtllm", "trt-llm": "trtllm", "trt": "trtllm",
    "dynamo-trt": "trtllm",
    "vllm": "vllm", "sglang": "sglang",
}  # fmt: skip
# Host cost per engine step (scheduling, input preparation, sampling, output processing) and
# per running sequence, and the fraction of it hidden behind the GPU's step by the framework's
# overlap scheduler (the host prepares step n+1 while the GPU runs step n):
#   t_step = gpu + host - overlap * min(gpu, host).
# Priors (sources in conf/calibration/README.md §framework): vLLM V0 spent 5-13 ms per decode
# step on the host (RFC #6854); V1 and async scheduling hide most of it; SGLang's overlap
# scheduler shows no GPU idle (v0.4 blog); TRT-LLM's overlap scheduler defers one step.
# ``request_ms`` is the host latency on one request's way to its first token outside the GPU
# steps: API server, tokenization, admission, the prefill's eager kernel launches (prefill runs
# without CUDA graphs), detokenization and streaming. vLLM v0.6 measured the HTTP API server
# at 33 % of execution time (framework_overhead.csv); InferenceX batch-1 TTFTs of a 1K prompt
# are 70-160 ms where the prefill itself takes 10-30 ms (conf/calibration/holdout_small_batch.csv).
# ``kernel_factor`` is the kernels an engine really launches per step relative to the fused count
# of ``kernels.py`` (unfused norms, separate top-k, permute and quantize kernels, extra
# stream syncs; TRT-LLM's DeepSeek-R1 min-latency blog lists a dozen fusions that took one
# engine from 67 to 368 tok/s/user at batch 1, kernel_benchmarks.md §6.3). 1 = fully fused.
FRAMEWORK_PRIOR: dict[str, dict[str, float]] = {
    "static": dict(step_ms=0.0, seq_us=0.0, overlap=0.0, request_ms=0.0, kernel_factor=1.0),
    "trtllm": dict(step_ms=0.3, seq_us=10.0, overlap=0.8, request_ms=30.0, kernel_factor=1.3),
    "vllm": dict(step_ms=1.0, seq_us=20.0, overlap=0.6, request_ms=30.0, kernel_factor=1.5),
    "sglang": dict(step_ms=0.5, seq_us=10.0, overlap=0.8, request_ms=30.0, kernel_factor=1.3),
}
FRAMEWORK_FIELDS = ("step_ms", "seq_us", "overlap", "request_ms", "kernel_factor")
# Public evidence for the framework costs (conf/calibration/kernels/framework_overhead.csv):
FRAMEWORK_EVIDENCE: dict[str, tuple[float, float, str]] = {
    "step_ms": (0.05, 13.0, "vLLM V0 GPU bubble 5-13 ms per decode step (RFC #6854); overlap schedulers show none (SGLang v0.4)"),
    "seq_us": (1.0, 100.0, "vLLM: 5-6 ms gap at batch 256 (~22 us/seq, #10634); output processing 3.4 ms at batch 32 (V0, RFC #6913)"),
    "overlap": (0.0, 1.0, "SGLang zero-overhead scheduler: no GPU idle; TRT-LLM overlap scheduler; vLLM async scheduling"),
    "request_ms": (5.0, 150.0, "vLLM v0.6: API server 33 % of execution time; batch-1 TTFT of 1K prompts 70-160 ms (InferenceX rows)"),
    "kernel_factor": (1.0, 3.0, "TRT-LLM DeepSeek-R1 batch 1: fusions took 67 -> 368 tok/s/user (blog 1); 100 vs ~150 kernels/step fused vs unfused Llama-1B"),
}  # fmt: skip
DEFAULT_FRAMEWORK = "trtllm"


def effective_framework(sram_first: Array, code: Array) -> Array:
    """The framework a chip really runs: SRAM-first chips run one compiler-scheduled program,
    with no host framework in the token loop (``static``), whatever the software setting."""
    return jnp.where(sram_first > 0, 0.0, code)


def framework_code(name: str) -> float:
    """Float code of a framework name (or alias); raises ValueError with the choices."""
    key = str(name).strip().lower()
    if key not in FRAMEWORK_ALIASES:
        raise ValueError(f"unknown framework {name!r}; use one of {'|'.join(FRAMEWORKS)}")
    return float(FRAMEWORKS.index(FRAMEWORK_ALIASES[key]))


class Runtime(eqx.Module):
    """Serving-engine facts shared by all hardware (defaults cited; override in config)."""

    latency_scaleout_us: Array  # per collective across scale-up domains (NIC, RDMA)
    moe_imbalance: Array  # max/mean expert load at large EP without EPLB (workloads.md §6: ~1.2)
    reserve_fraction: Array  # HBM kept free of weights+KV (vLLM gpu_memory_utilization=0.9)
    max_batch_per_rank: Array  # engine cap on sequences per DP rank (TRT-LLM default 2048)
    chunk_tokens: Array  # prefill tokens per rank per engine step when saturating prefill
    spec_acceptance: Array  # default per-token acceptance when only spec_k is given
    # TensorRT-LLM's attention-DP balance (``attention_dp_config: enable_balance``): a context
    # request is held until every DP rank has one, at most ``timeout_iters`` iterations, then
    # ``batching_wait_iters`` more (system_solve.balance_wait). Values of the public DeepSeek-R1
    # recipes (InferenceX dsr1 TRT-LLM scripts and TRT-LLM's DeepSeek-R1 deployment guide:
    # enable_balance true, batching_wait_iters 0, timeout_iters 60).
    adp_timeout_iters: Array
    adp_batching_wait_iters: Array
    # Per framework (arrays of shape [len(FRAMEWORKS)]): host ms per step, us per sequence, and
    # the overlapped fraction (see FRAMEWORK_PRIOR).
    fw_step_ms: Array
    fw_seq_us: Array
    fw_overlap: Array
    fw_request_ms: Array
    fw_kernel_factor: Array

    def framework(self, code: Array) -> tuple[Array, Array, Array]:
        """(step seconds, seconds per sequence, overlap) of framework ``code``."""
        i = jnp.asarray(code).astype(jnp.int32)
        return (
            jnp.take(self.fw_step_ms, i) * 1e-3,
            jnp.take(self.fw_seq_us, i) * 1e-6,
            jnp.take(self.fw_overlap, i),
        )

    def kernel_factor(self, code: Array) -> Array:
        """Kernels framework ``code`` launches relative to the fused count (1 = fused)."""
        return jnp.take(self.fw_kernel_factor, jnp.asarray(code).astype(jnp.int32))

    def request_seconds(self, code: Array) -> Array:
        """Host latency added to each request's TTFT by framework ``code``."""
        return jnp.take(self.fw_request_ms, jnp.asarray(code).astype(jnp.int32)) * 1e-3


RUNTIME_SCALARS = (
    "latency_scaleout_us",
    "moe_imbalance",
    "reserve_fraction",
    "max_batch_per_rank",
    "chunk_tokens",
    "spec_acceptance",
    "adp_timeout_iters",
    "adp_batching_wait_iters",
)


def default_runtime() -> Runtime:
    fw = {f: jnp.asarray([FRAMEWORK_PRIOR[n][f] for n in FRAMEWORKS]) for f in FRAMEWORK_FIELDS}
    return Runtime(
        # A collective (all-reduce, all-to-all) across scale-up domains: NCCL all-reduce of 8 B
        # over 2 nodes ~19-20 us (NVIDIA/nccl-tests #150); DeepEP low-latency all-to-all 77-194
        # us incl. data. A point-to-point hop is a chip's own ``Hardware.scaleout_hop_us``.
        latency_scaleout_us=jnp.asarray(25.0),
        moe_imbalance=jnp.asarray(1.2),
        reserve_fraction=jnp.asarray(0.1),
        max_batch_per_rank=jnp.asarray(2048.0),
        chunk_tokens=jnp.asarray(8192.0),
        # TRT-LLM blog 2: DeepSeek-R1 MTP nextn=3 accepts 2.82 tokens/step -> alpha ~ 0.75.
        spec_acceptance=jnp.asarray(0.75),
        adp_timeout_iters=jnp.asarray(60.0),
        adp_batching_wait_iters=jnp.asarray(0.0),
        fw_step_ms=fw["step_ms"],
        fw_seq_us=fw["seq_us"],
        fw_overlap=fw["overlap"],
        fw_request_ms=fw["request_ms"],
        fw_kernel_factor=fw["kernel_factor"],
    )


def prior_efficiency() -> Efficiency:
    """Every generation at the prior (uncalibrated) values; shape [len(GENERATIONS)]."""
    priors = [generation_prior(g) for g in GENERATIONS]
    return Efficiency(
        *[jnp.asarray([p[f] for p in priors], dtype=jnp.float64) for f in EFFICIENCY_FIELDS]
    )
