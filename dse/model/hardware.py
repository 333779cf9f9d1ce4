"""Accelerators and host tiers as pytrees of peak ratings (datasheet numbers, not achieved ones).

A :class:`Hardware` is built from a ``conf/hardware/*.yaml`` entry. Every number in those files
carries a source in the file's ``sources:`` mapping (tests check it). Efficiencies (MFU, MBU,
link efficiency, overheads) are *not* hardware fields: they live in the calibration parameters,
fitted to public measurements per generation (``dse calibrate``).

Units are explicit in the field names: TFLOP/s, GB (1e9 B), TB/s, GB/s, Gbit/s, W, USD.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jax import Array

from .fields import arrays_from_mapping

# Numeric fields of an accelerator YAML and their defaults (0 = absent / not supported).
HARDWARE_FIELDS: dict[str, float] = {
    "bf16_tflops": 0.0,  # dense (no 2:4 sparsity) tensor-core peak
    "fp8_tflops": 0.0,
    "fp4_tflops": 0.0,  # NVFP4 on NVIDIA, MXFP4 on AMD; 0: not supported
    "mem_capacity_gb": 0.0,  # HBM for GPUs, on-chip SRAM for SRAM-first chips
    "mem_bandwidth_tbs": 0.0,
    "sram_mb": 0.0,  # largest on-chip cache / scratchpad
    "scaleup_bandwidth_gbs": 0.0,  # per direction, per accelerator (NVLink, IF, C2C links)
    "scaleup_peer_bandwidth_gbs": 0.0,  # per direction to ONE peer (switchless meshes); 0: = above
    "scaleup_domain": 1.0,  # accelerators in one scale-up domain (NVL8, NVL72, LPX rack)
    "scaleout_bandwidth_gbit": 0.0,  # NIC line rate per accelerator, one direction
    "host_link_bandwidth_gbs": 0.0,  # accelerator <-> host memory, per direction
    # One-way latency of a small message over each link (wire, switches, NIC; not the software
    # issue cost, which the calibration's per-operation latencies carry). Required in every
    # accelerator file (``LINK_LATENCY_FIELDS``): 0 only for an ideal machine in tests.
    "scaleup_hop_us": 0.0,  # chip to chip in the scale-up domain (NVLink, Infinity Fabric, C2C)
    "scaleout_hop_us": 0.0,  # NIC to NIC through the scale-out fabric (RDMA, across racks)
    "host_link_hop_us": 0.0,  # accelerator <-> host memory (NVLink-C2C or PCIe)
    "tdp_w": 0.0,
    "price_usd": 0.0,  # capex per accelerator (share of rack where sold as a rack)
}

# Link latencies every accelerator file must give (with a source): a missing one would silently
# make a hop free.
LINK_LATENCY_FIELDS: tuple[str, ...] = ("scaleup_hop_us", "scaleout_hop_us", "host_link_hop_us")

# Numeric fields of a host-tier YAML (``kind: cpu``).
HOST_FIELDS: dict[str, float] = {
    "mem_capacity_gb": 0.0,
    "mem_bandwidth_tbs": 0.0,
    "gpu_link_bandwidth_gbs": 0.0,  # per direction, per CPU (shared by gpus_per_cpu GPUs)
    "gpus_per_cpu": 1.0,
    "tdp_w": 0.0,
    "price_usd": 0.0,
}

# Calibration groups: hardware of one generation shares efficiency parameters.
GENERATIONS: tuple[str, ...] = (
    "hopper",
    "blackwell",
    "blackwell_ultra",
    "rubin",
    "cdna3",
    "cdna4",
    "lpu",
)


class Hardware(eqx.Module):
    """Peak ratings of one accelerator type. Float64 scalars (or stacked arrays)."""

    bf16_tflops: Array
    fp8_tflops: Array
    fp4_tflops: Array
    mem_capacity_gb: Array
    mem_bandwidth_tbs: Array
    sram_mb: Array
    scaleup_bandwidth_gbs: Array
    scaleup_peer_bandwidth_gbs: Array
    scaleup_domain: Array
    scaleout_bandwidth_gbit: Array
    host_link_bandwidth_gbs: Array
    scaleup_hop_us: Array
    scaleout_hop_us: Array
    host_link_hop_us: Array
    tdp_w: Array
    price_usd: Array
    generation: Array  # index into GENERATIONS (float so it stacks; used to pick calibration)
    # 1.0 for SRAM-first chips (Groq LPU/LPX: on-chip SRAM is the only memory, weights and KV
    # sharded over many chips); 0.0 for accelerators with HBM. From the YAML ``kind``.
    sram_first: Array

    @classmethod
    def from_mapping(cls, values: dict, generation: str, kind: str = "gpu") -> Hardware:
        arrays = arrays_from_mapping(values, HARDWARE_FIELDS, "hardware")
        if generation not in GENERATIONS:
            raise ValueError(f"unknown generation {generation!r}; expected one of {GENERATIONS}")
        if kind not in ("gpu", "sram"):
            raise ValueError(f"unknown accelerator kind {kind!r}; expected gpu or sram")
        return cls(
            **arrays,
            generation=jnp.asarray(float(GENERATIONS.index(generation))),
            sram_first=jnp.asarray(1.0 if kind == "sram" else 0.0),
        )

    # Derived, SI units -----------------------------------------------------------------------
    def peak_flops(self, bits: Array) -> Array:
        """Dense peak FLOP/s for GEMMs whose *operands* are ``bits`` wide (4, 8 or 16).

        A precision the chip lacks runs on the next wider one it has: FP4 weights on Hopper run
        as W4A16 on the BF16 units (TRT-LLM's MXFP4 path; calibration_README.md), FP8 on a chip
        without FP8 runs at BF16 (hardware.md §9: "NVFP4 peak usable only for W4A4").
        """
        bf16 = self.bf16_tflops * 1e12
        fp8 = jnp.where(self.fp8_tflops > 0, self.fp8_tflops * 1e12, bf16)
        fp4 = jnp.where(self.fp4_tflops > 0, self.fp4_tflops * 1e12, bf16)
        return jnp.where(bits <= 4.0, fp4, jnp.where(bits <= 8.0, fp8, bf16))

    @property
    def mem_bytes(self) -> Array:
        return self.mem_capacity_gb * 1e9

    @property
    def mem_bandwidth(self) -> Array:
        return self.mem_bandwidth_tbs * 1e12

    @property
    def scaleup_bandwidth(self) -> Array:
        return self.scaleup_bandwidth_gbs * 1e9

    @property
    def scaleup_peer_bandwidth(self) -> Array:
        peer = self.scaleup_peer_bandwidth_gbs
        return jnp.where(peer > 0, peer, self.scaleup_bandwidth_gbs) * 1e9

    @property
    def scaleout_bandwidth(self) -> Array:
        return self.scaleout_bandwidth_gbit * 1e9 / 8.0


class HostTier(eqx.Module):
    """A CPU with large memory next to the accelerators: the KV-offload tier ("G2" in Dynamo's
    KVBM). Built from a ``conf/hardware/*.yaml`` entry with ``kind: cpu``."""

    mem_capacity_gb: Array
    mem_bandwidth_tbs: Array
    gpu_link_bandwidth_gbs: Array  # per direction per CPU, shared by ``gpus_per_cpu``
    gpus_per_cpu: Array
    tdp_w: Array
    price_usd: Array

    @classmethod
    def from_mapping(cls, values: dict) -> HostTier:
        return cls(**arrays_from_mapping(values, HOST_FIELDS, "host"))

    @property
    def gb_per_gpu(self) -> Array:
        return self.mem_capacity_gb / jnp.maximum(self.gpus_per_cpu, 1.0)

    @property
    def bandwidth_per_gpu(self) -> Array:
        """Bytes/s one GPU can pull from host memory: its share of the CPU-GPU link and of the
        CPU's own memory bandwidth."""
        share = jnp.maximum(self.gpus_per_cpu, 1.0)
        return jnp.minimum(self.gpu_link_bandwidth_gbs * 1e9, self.mem_bandwidth_tbs * 1e12) / share
