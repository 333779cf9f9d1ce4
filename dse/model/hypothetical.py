"""Hypothetical accelerators: a catalog chip with its FLOPs, HBM, SRAM and links scaled.

Architects ask "what if the decode chip had 1.5x the HBM bandwidth, and what would that buy
per dollar?". A :class:`~dse.model.system_design.SystemDesign` carries six continuous knobs
(1.0 = the catalog chip); :func:`hypothetical_hardware` applies them to the decode/attention
pool's accelerator, and to the prefill and FFN pools when they use the same catalog type (a
hypothetical chip replaces that type everywhere in the design).

Price and power follow a first-order bill-of-materials model whose shares live in
``conf/cost/<name>.yaml`` (sources there)::

    price' = price * (1 + s_compute (f - 1) + s_hbm_gb (c - 1) + s_hbm_bw (b - 1)
                        + s_scaleup (u - 1)) + sram_usd_per_mb * sram_mb * (m - 1)
    tdp'   = tdp * (1 + p_compute (f - 1) + p_hbm (b - 1))

with f, c, b, m, u the FLOPs, HBM capacity, HBM bandwidth, SRAM and scale-up scales; scale-out
bandwidth adds ``network_usd_per_accelerator * (o - 1)`` (more NICs and optics). Linear shares are honest only near 1.0: search
ranges in ``conf/space/`` keep the knobs within 0.5-2x of the catalog chip.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from jax import Array

from .cost import CostParams
from .hardware import Hardware

# SystemDesign fields that scale the decode pool's accelerator (default 1.0 each).
HARDWARE_KNOBS: tuple[str, ...] = (
    "flops_scale",
    "hbm_bw_scale",
    "hbm_gb_scale",
    "sram_scale",
    "scaleup_bw_scale",
    "scaleout_bw_scale",
)


def hypothetical_hardware(hw: Hardware, sd, cost: CostParams) -> Hardware:
    """``hw`` with the design's knobs applied to specs, price and TDP."""
    f, b, c = sd.flops_scale, sd.hbm_bw_scale, sd.hbm_gb_scale
    m, u, o = sd.sram_scale, sd.scaleup_bw_scale, sd.scaleout_bw_scale
    price = hw.price_usd * (
        1.0
        + cost.compute_price_share * (f - 1.0)
        + cost.hbm_gb_price_share * (c - 1.0)
        + cost.hbm_bw_price_share * (b - 1.0)
        + cost.scaleup_price_share * (u - 1.0)
    ) + cost.sram_usd_per_mb * hw.sram_mb * (m - 1.0)
    # Scale-out: NICs and optics grow with the bandwidth bought (conf/cost network estimate).
    price = price + cost.network_usd_per_accelerator * (o - 1.0)
    tdp = hw.tdp_w * (1.0 + cost.compute_power_share * (f - 1.0) + cost.hbm_power_share * (b - 1.0))
    # Only the scaled fields are named: a new Hardware field passes through unchanged.
    return dataclasses.replace(
        hw,
        bf16_tflops=hw.bf16_tflops * f,
        fp8_tflops=hw.fp8_tflops * f,
        fp4_tflops=hw.fp4_tflops * f,
        mem_capacity_gb=hw.mem_capacity_gb * c,
        mem_bandwidth_tbs=hw.mem_bandwidth_tbs * b,
        sram_mb=hw.sram_mb * m,
        scaleup_bandwidth_gbs=hw.scaleup_bandwidth_gbs * u,
        scaleup_peer_bandwidth_gbs=hw.scaleup_peer_bandwidth_gbs * u,
        scaleout_bandwidth_gbit=hw.scaleout_bandwidth_gbit * o,
        tdp_w=jnp.maximum(tdp, 1.0),
        price_usd=jnp.maximum(price, 1.0),
    )


def apply_where(use: Array, scaled: Hardware, original: Hardware) -> Hardware:
    """``scaled`` where ``use`` else ``original`` (both branches are cheap; no NaN risk)."""
    return jax.tree.map(lambda a, b: jnp.where(use, a, b), scaled, original)


__all__ = ["HARDWARE_KNOBS", "apply_where", "hypothetical_hardware"]
