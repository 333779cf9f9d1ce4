"""Feasibility rules of a system design: pool sizes, parallel layouts consistent with the
model and the hardware, memory and tiers. Each rule is a boolean check with a code from the
one table in ``reasons.py``; the first failing rule is the design's reason."""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array

from .hardware import Hardware
from .pools import Pools
from .reasons import REASONS
from .system_design import SystemDesign


def _divides(d: Array, n: Array) -> Array:
    """Whether ``d`` is a whole number >= 1 that divides ``n`` (float64 fields holding whole
    numbers; a comparison only, so no gradient flows through it)."""
    safe_d = jnp.maximum(d, 1.0)
    r = jnp.mod(n, safe_d)
    tol = 1e-9 * jnp.maximum(jnp.abs(n), 1.0)
    whole = jnp.abs(d - jnp.round(d)) <= 1e-9 * safe_d
    return (d >= 1.0) & whole & (jnp.minimum(r, safe_d - r) <= tol)


def _layout_checks(
    p: Pools, sd: SystemDesign, hw_decode: Hardware, hw_prefill: Hardware, hw_ffn: Hardware
) -> list[tuple[Array, float]]:
    """Parallel layouts that are inconsistent with the model or the hardware, as (ok, code).

    The rules mirror ``dse.scenarios.schema.parse_row`` (which rejects such ``dse predict``
    rows); here they are per-point reasons, so a sweep over tp = 1..16 still runs for a
    40-head model and marks the bad points. Decisions (what is impossible vs merely slow):

    * Heads / MLP widths: GPU engines (vLLM, SGLang, TRT-LLM) shard whole attention heads and
      whole intermediate columns, so tp | heads and ffn_tp | intermediate size are required.
      SRAM-first chips (``sram_first``; Groq) are compiler-scheduled and split tensors at any
      granularity (dse/model/sram.py; the shipped vr200_lpx_decode runs tp=48 over Kimi-K2's 64
      heads), so these two rules apply to GPU pools only (ASSUMPTION).
    * EP (MoE only): experts are laid over the tp*dp ranks of a stage (``Design.moe_tp =
      tp*dp/ep``, layer.moe_experts), so ep must divide tp*dp and not exceed the routed
      experts. A dense model ignores ep (num_moe_layers = 0 and experts_per_token = 0 zero
      every expert term), so ep > 1 there changes no number and is not a reason (the shipped
      NVL72 system configs set ep = 8 for every model). Uneven expert placement (384 / 48)
      is realizable and not a reason (as parse_row).
    * KV parallelism: ``kvp`` splits each TP group into equal slices, so it must divide tp.
      ``tp / kvp`` need not divide the heads beyond what tp | heads already gives.
    * pp / ffn_pp > layers: a stage with no layer. Uneven layers per stage are modelled as the
      average and are legal (as parse_row).
    * Whole workers: ``Pools.decode_workers = decode_units / (tp*pp*dp)`` and the prefill
      throughput use fractional worker counts (no rounding anywhere), so a pool that is not a
      whole number of workers would be credited with a fraction of a worker's throughput while
      paying for every unit: a reason. The FFN pool is one group of all its chips (every
      attention worker shares it, dse/model/afd.py); uneven chips per layer group
      (ffn_units / ffn_pp) are realizable and not a reason, but its EP degree per group
      (``Pools.ffn.design.ep``) must not exceed the experts.
    * Scale-up domain: a TP all-reduce, EP all-to-all or PP hop whose group is larger than
      ``scaleup_domain`` is charged scale-out bandwidth and latency (collectives.all_reduce_time:
      hierarchical, ``domains = group / min(group, domain)``; moe_all_to_all_time;
      step.forward_cost's ``send_recv_time`` crossing flag), so tp*pp*dp > domain is slow but
      legal. It is impossible only where the accelerator has no scale-out network
      (``scaleout_bandwidth`` 0, e.g. groq_lpu): there ``safe_div(bytes, 0)`` would make the
      spill, the P/D KV hand-off and the attention-FFN link free, so those are reasons.
    """
    r = REASONS
    a = p.arch
    heads, layers, experts = a.num_attention_heads, a.num_layers, a.num_experts
    is_moe = experts > 0
    disagg, afd = p.disagg, p.afd
    gpu_d, gpu_p, gpu_f = (
        hw_decode.sram_first <= 0,
        hw_prefill.sram_first <= 0,
        hw_ffn.sram_first <= 0,
    )
    ffn_widths_ok = jnp.where(
        is_moe,
        _divides(sd.ffn_tp, a.moe_intermediate_size)
        & ((a.num_mlp_dense_layers <= 0) | _divides(sd.ffn_tp, a.intermediate_size)),
        _divides(sd.ffn_tp, a.intermediate_size),
    )
    nic_d = hw_decode.scaleout_bandwidth > 0
    nic_p = hw_prefill.scaleout_bandwidth > 0
    nic_f = hw_ffn.scaleout_bandwidth > 0
    scaleout_ok = (
        (nic_d | (sd.decode_worker <= hw_decode.scaleup_domain))
        & (~disagg | (nic_d & nic_p))
        & (~afd | (nic_d & nic_f))
    )
    return [
        (_divides(sd.decode_worker, sd.decode_units), r["decode_units_not_whole_workers"]),
        (
            ~disagg | _divides(sd.prefill_worker, sd.prefill_units),
            r["prefill_units_not_whole_workers"],
        ),
        (~gpu_d | _divides(sd.tp, heads), r["tp_not_dividing_heads"]),
        (~disagg | ~gpu_p | _divides(sd.prefill_tp, heads), r["prefill_tp_not_dividing_heads"]),
        (sd.pp <= layers, r["pp_exceeds_layers"]),
        (~is_moe | (sd.ep <= experts), r["ep_exceeds_experts"]),
        (~is_moe | _divides(sd.ep, sd.tp * sd.dp), r["ep_not_dividing_tp_dp"]),
        (_divides(sd.kvp, sd.tp), r["kvp_not_dividing_tp"]),
        (~disagg | ~is_moe | (sd.prefill_ep <= experts), r["prefill_ep_exceeds_experts"]),
        (
            ~disagg | ~is_moe | _divides(sd.prefill_ep, sd.prefill_tp * sd.prefill_dp),
            r["prefill_ep_not_dividing_tp_dp"],
        ),
        (~afd | (sd.ffn_pp <= layers), r["ffn_pp_exceeds_layers"]),
        (~afd | ~gpu_f | ffn_widths_ok, r["ffn_tp_not_dividing_mlp"]),
        (~afd | ~is_moe | (p.ffn.design.ep <= experts), r["ffn_ep_exceeds_experts"]),
        (scaleout_ok, r["needs_scaleout_network"]),
    ]


def infeasibility_reason(
    p: Pools,
    sd: SystemDesign,
    hw_decode: Hardware,
    hw_prefill: Hardware,
    hw_ffn: Hardware,
) -> Array:
    """The first thing that makes this system infeasible, as a ``reasons.REASONS`` code (pool sizes,
    then the parallel layout, then memory and tiers). Codes are constants chosen by boolean
    checks, so the reason carries no gradient and cannot put NaN into one."""
    r = REASONS
    checks = [
        (p.units_ok, r["pool_smaller_than_worker"]),
        ((sd.ffn_units <= 0) | (sd.prefill_units > 0), r["afd_needs_prefill_pool"]),
        *_layout_checks(p, sd, hw_decode, hw_prefill, hw_ffn),
        (p.decode_weights_fit, r["weights_exceed_memory"]),
        (p.max_batch >= 1.0, r["no_sequence_fits"]),
        (p.max_context_fits, r["context_exceeds_memory"]),
        (p.ffn_fits, r["ffn_pool_too_small"]),
        (p.prefill_fits, r["prefill_pool_too_small"]),
        (sd.host_gb_per_gpu <= p.host.gb_per_gpu, r["host_memory_exceeded"]),
    ]
    reason = jnp.asarray(0.0)
    for ok, code in reversed(checks):
        reason = jnp.where(ok, reason, code)
    return reason
