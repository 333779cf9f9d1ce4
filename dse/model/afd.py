"""Attention-FFN disaggregation (AFD): attention on one pool, FFN/experts on another.

MegaScale-Infer (arXiv:2504.02263) and the Rubin + Groq 3 LPX pairing (workloads.md §5, §8):
attention workers keep the KV cache and attention weights; an FFN pool holds the dense MLPs
and experts. Per layer, each micro-batch's activations go to the FFN pool and come back
(``2 * tokens * hidden * 2 B`` over the fabric between the pools). With ``m`` micro-batches in
ping-pong the three resources (attention, FFN, link) work on different micro-batches at once,
so one step over all layers takes (MegaScale-Infer §4, the pipeline bound)

    T_step = (m - 1) * max(T_attn, T_ffn, T_link) + T_attn + T_ffn + T_link

where each ``T`` is one micro-batch through all layers. ``m = 1`` is the plain sequential
split. Each side's per-layer fixed costs (launch gaps on GPUs, synchronisation on SRAM chips)
are part of its time per micro-batch pass.

The FFN pool is laid out as ``ffn_pp`` groups of consecutive layers; each group's chips run
expert parallel (``ep`` = chips / ``ffn_tp``) with ``ffn_tp``-way tensor parallel inside
experts and dense MLPs. Every attention worker's tokens share the whole FFN pool.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array

from .layer import ACT_BYTES, Segment, Setup, embedding, logits
from .numerics import safe_div, soft_max
from .roofline import Cost, network_cost
from .step import attention_block, attention_overhead, ffn_block, ffn_overhead, host_overlapped


def afd_link_bandwidth(att: Setup, ffn: Setup, attention_workers: Array) -> Array:
    """Bytes/s one attention worker can exchange with the FFN pool: its own NICs, or its share
    of the FFN pool's NICs, whichever is smaller (the two pools meet on the scale-out fabric)."""
    d_a, d_f = att.design, ffn.design
    worker = att.hw.scaleout_bandwidth * d_a.tp * d_a.pp * d_a.dp
    ffn_units = d_f.tp * d_f.dp * d_f.pp
    ffn_share = safe_div(ffn.hw.scaleout_bandwidth * ffn_units, attention_workers)
    return jnp.minimum(worker, ffn_share) * att.eff.link_eff


def afd_hop_seconds(att: Setup, ffn: Setup) -> Array:
    """Fixed time of one one-way hand-off between the pools (there are two per layer): the
    NIC-to-NIC hop of the slower end (``Hardware.scaleout_hop_us``, sourced per chip), plus
    one kernel on the attention side that posts or polls the transfer (``kernel_us``; the FFN
    side of an SRAM-first pool is compiler-scheduled and issues nothing). Before 2026-12 this
    was a flat 25 us per hop (``Runtime.latency_scaleout_us``, a collective's latency)."""
    hop = jnp.maximum(att.hw.scaleout_hop_us, ffn.hw.scaleout_hop_us)
    return (hop + att.eff.kernel_us) * 1e-6


def afd_step(
    att: Setup, ffn: Setup, seg: Segment, attention_workers: Array, microbatches: Array
) -> Cost:
    """One decode step of ``seg`` (one attention DP rank's sequences) split over the pools."""
    a, d_a, d_f = att.arch, att.design, ffn.design
    m = jnp.maximum(microbatches, 1.0)
    micro = Segment(seg.seqs / m, seg.q, seg.past, seg.absorbed)
    tokens = micro.tokens
    # Each side's per-layer fixed costs are part of its time per micro-batch pass.
    t_attn = attention_block(att, (micro,), tokens).overlapped(att) + attention_overhead(att)
    # The FFN pool sees every attention worker's (and DP rank's) micro-batch at once, spread
    # over the DP ranks of one layer group.
    ffn_tokens = safe_div(tokens * d_a.dp * attention_workers, d_f.dp)
    t_ffn = ffn_block(ffn, ffn_tokens).overlapped(ffn) + ffn_overhead(ffn)
    per_layer = 2.0 * tokens * d_a.dp * a.hidden_size * ACT_BYTES
    link = afd_link_bandwidth(att, ffn, attention_workers)
    t_link = a.num_layers * (safe_div(per_layer, link) + 2.0 * afd_hop_seconds(att, ffn))
    link_cost = network_cost(t_link)
    busiest = soft_max(soft_max(t_attn.total, t_ffn.total), t_link)
    pipelined = t_attn + t_ffn + link_cost
    # The (m - 1) extra passes are limited by the busiest resource; attribute them to it.
    extra = (m - 1.0) * busiest
    share = [safe_div(x, pipelined.total) for x in pipelined.as_tuple()]
    total = pipelined + Cost(*[extra * w for w in share])
    gpu = total + logits(att, seg.tokens) + embedding(att, seg.tokens)
    return host_overlapped(att, gpu, seg.seqs)


__all__ = ["afd_hop_seconds", "afd_link_bandwidth", "afd_step"]
