"""Collective communication time over the right link: scale-up domain or scale-out NIC.

All functions return seconds for one GPU's part of the collective (they are symmetric), as
``latency + bytes / (achieved bandwidth)``. A group larger than the scale-up domain spills onto
the NIC: all-to-all traffic splits in proportion to the peers outside the domain; all-reduce is
hierarchical (reduce inside the domain, all-reduce 1/domain of the data across domains).

Bandwidths are per direction (hardware.md §5.1 modelling note). On switchless meshes (AMD
Infinity Fabric) a GPU reaches each peer over its own link, so a group of ``g`` GPUs gets
``min(aggregate, peer * (g - 1))``.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array

from .efficiency import Efficiency, Runtime
from .hardware import Hardware
from .numerics import safe_div, soft_max


def _scaleup_rate(hw: Hardware, group: Array, eff: Efficiency) -> Array:
    peers = jnp.maximum(group - 1.0, 1.0)
    mesh = jnp.minimum(hw.scaleup_bandwidth, hw.scaleup_peer_bandwidth * peers)
    return mesh * eff.link_eff


def _scaleout_rate(hw: Hardware, eff: Efficiency) -> Array:
    return hw.scaleout_bandwidth * eff.link_eff


def _outside_fraction(hw: Hardware, group: Array) -> Array:
    """Fraction of a group's peers outside the scale-up domain (0 when the group fits)."""
    return jnp.clip(1.0 - safe_div(hw.scaleup_domain, group, 1.0), 0.0, 1.0)


def _latency(hw: Hardware, group: Array, rt: Runtime, eff: Efficiency) -> Array:
    crosses = group > hw.scaleup_domain
    return jnp.where(crosses, rt.latency_scaleout_us, eff.collective_latency_us) * 1e-6


def all_reduce_time(
    nbytes: Array, group: Array, hw: Hardware, eff: Efficiency, rt: Runtime
) -> Array:
    """Ring all-reduce of ``nbytes`` per GPU over ``group`` GPUs (0 for a group of one)."""
    active = group > 1.0
    inside = jnp.minimum(group, hw.scaleup_domain)
    domains = safe_div(group, inside, 1.0)
    t_in = 2.0 * safe_div(inside - 1.0, inside) * safe_div(nbytes, _scaleup_rate(hw, inside, eff))
    t_out = (
        2.0
        * safe_div(domains - 1.0, domains)
        * safe_div(safe_div(nbytes, inside), _scaleout_rate(hw, eff))
    )
    return jnp.where(active, t_in + t_out + _latency(hw, group, rt, eff), 0.0)


def send_recv_time(
    nbytes: Array, hw: Hardware, eff: Efficiency, rt: Runtime, crosses: Array
) -> Array:
    """Point-to-point activation hand-off between pipeline stages."""
    rate = jnp.where(crosses, _scaleout_rate(hw, eff), _scaleup_rate(hw, jnp.asarray(2.0), eff))
    # A send costs the same issue and synchronisation either way (``collective_latency_us``,
    # measured inside the domain, where it includes one scale-up hop); leaving the domain
    # swaps that hop for the NIC-to-NIC one (``Hardware.scaleout_hop_us``, sourced per chip).
    extra_hop = jnp.maximum(hw.scaleout_hop_us - hw.scaleup_hop_us, 0.0)
    lat = (eff.collective_latency_us + jnp.where(crosses, extra_hop, 0.0)) * 1e-6
    return safe_div(nbytes, rate) + lat


def moe_all_to_all_time(
    scaleup_bytes: Array,
    scaleout_bytes: Array,
    group: Array,
    hw: Hardware,
    eff: Efficiency,
    rt: Runtime,
) -> Array:
    """MoE dispatch+combine with the byte split already known: ``scaleup_bytes`` over the
    domain's links, ``scaleout_bytes`` over the NIC (0 when the group fits in one domain);
    both links run concurrently. Dispatch and combine are two kernels, each with a fixed
    latency (``a2a_latency_us`` inside the domain: one-sided NVLink all-to-all takes 19 us to
    dispatch and 31 us to combine one token per rank on GB200, kernel_benchmarks.md §5.3; at
    least the NIC's latency across domains)."""
    active = group > 1.0
    inside = jnp.minimum(group, hw.scaleup_domain)
    t_in = safe_div(scaleup_bytes, _scaleup_rate(hw, inside, eff))
    t_out = safe_div(scaleout_bytes, _scaleout_rate(hw, eff))
    crosses = group > hw.scaleup_domain
    one = jnp.where(
        crosses, jnp.maximum(rt.latency_scaleout_us, eff.a2a_latency_us), eff.a2a_latency_us
    )
    return jnp.where(active, soft_max(t_in, t_out) + 2.0 * one * 1e-6, 0.0)


def all_to_all_time(
    nbytes: Array, peers: Array, span: Array, hw: Hardware, eff: Efficiency, rt: Runtime
) -> Array:
    """Plain all-to-all: each GPU sends ``nbytes`` in all to ``peers - 1`` others spread over a
    group of ``span`` GPUs (the share outside the scale-up domain goes over the NIC; 0 for one
    peer). A fixed-size exchange with no routing or token permutation, so its fixed cost is one
    collective's latency (``collective_latency_us``, the small-message NCCL latency), not the
    routed MoE dispatch's (``a2a_latency_us``)."""
    active = peers > 1.0
    outside = _outside_fraction(hw, span)
    t_in = safe_div(nbytes * (1.0 - outside), _scaleup_rate(hw, peers, eff))
    t_out = safe_div(nbytes * outside, _scaleout_rate(hw, eff))
    return jnp.where(active, soft_max(t_in, t_out) + _latency(hw, span, rt, eff), 0.0)
