"""The pools of a system design as model setups: decode (or attention), prefill, FFN, tiers.

``build_pools`` turns a :class:`SystemDesign` into one :class:`Setup` per pool (each with its
own hardware and calibrated efficiencies) plus the quantities the system model needs from
them: capacities for the cache tiers, restore bandwidths, the KV hand-off, memory checks, and
the prefill and decode step costs.
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from .afd import afd_step
from .architecture import Architecture
from .design import Design
from .efficiency import Efficiency, Runtime, effective_framework
from .hardware import Hardware, HostTier
from .layer import Segment, Setup
from .memory import (
    kv_bytes_per_sequence_gpu,
    max_sequences,
    memory_per_gpu,
    usable_bytes,
    weight_bytes_per_gpu,
    workspace_bytes,
)
from .numerics import safe_div
from .roofline import Cost, select_cost
from .speculation import speculation_cost
from .step import draft_cost, forward_cost
from .system_design import SystemDesign
from .tiers import HOST_LATENCY_S, kv_bytes_per_token
from .workload import WorkloadProfile


def _design(sd: SystemDesign, hw: Hardware, tp, pp, ep, dp, k, tau, isl, osl, kvp=None) -> Design:
    z = jnp.zeros_like(tp)
    return Design(
        tp=tp, pp=pp, ep=ep, dp=dp, kvp=z + 1.0 if kvp is None else kvp,
        weight_bits=sd.weight_bits, kv_bits=sd.kv_bits,
        phase=z + 1.0, mode=z, batch=z, concurrency=z, isl=isl, osl=osl, isl_cv=z, osl_cv=z,
        length_corr=z, prefix=z,
        spec_k=k, spec_tokens_per_step=tau, prefill_gpus=z, decode_gpus=z, act_bits=sd.act_bits,
        framework=effective_framework(hw.sram_first, sd.framework), harness=z,
    )  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Trace:
    """Which parts of the system model a compiled function traces (static; a smaller program
    compiles and runs faster). The defaults trace everything and select per design; a caller
    that knows its designs statically (``dse predict``'s fixed workloads: one serving mode, no
    FFN pool, MTP drafting or none, no lower cache tiers) leaves the rest out. Values are the
    same as with the defaults for every design the narrower trace admits."""

    disagg: bool | None = None  # None: both serving modes, selected by prefill_units > 0
    afd: bool = True  # False: no attention-FFN split traced (designs must have ffn_units 0)
    draft_model: bool = True  # False: only MTP drafting (or none) traced
    tiers: bool = True  # False: no host/storage restores (designs must have no lower tiers)


FULL_TRACE = Trace()


class Pools(eqx.Module):
    """The pools of one system design, set up once per design inside the traced function: each
    pool's ``Setup``, what fits where, the cache tiers' capacities and bandwidths, the KV
    hand-off. An immutable pytree: the steps and the solve read it, nothing writes it."""

    arch: Architecture
    host: HostTier
    profile: WorkloadProfile
    sd: SystemDesign
    trace: Trace = eqx.field(static=True)
    ctx: Array
    afd: Array  # bool: the design splits attention and FFN onto their own pool
    disagg: Array  # bool: a separate prefill pool
    decode: Setup
    ffn: Setup
    prefill_setup: Setup  # the pool that runs prefill: its own, or the decode pool (aggregated)
    decode_workers: Array
    max_batch: Array
    batch: Array
    decode_weights_fit: Array
    max_context_fits: Array
    ffn_fits: Array
    prefill_fits: Array
    units_ok: Array
    kv_bytes_per_token: Array
    capacities: tuple[Array, Array, Array]  # tokens in HBM, host memory, storage
    host_bandwidth: Array
    storage_bandwidth: Array
    host_link_total: Array
    storage_link_total: Array
    host_restore_latency: Array  # seconds: fixed cost of one host-tier restore
    handoff_seconds: Array

    def __init__(
        self,
        arch: Architecture,
        hw_decode: Hardware,
        hw_prefill: Hardware,
        hw_ffn: Hardware,
        host: HostTier,
        eff: Efficiency,
        rt: Runtime,
        profile: WorkloadProfile,
        sd: SystemDesign,
        k: Array,
        tau: Array,
        trace: Trace = FULL_TRACE,
    ):
        self.arch, self.host, self.profile, self.sd = arch, host, profile, sd
        self.trace = trace
        osl = jnp.maximum(profile.output_tokens, 1.0)
        self.ctx = profile.decode_context
        isl = profile.input_tokens
        self.afd = sd.ffn_units > 0 if trace.afd else jnp.zeros(jnp.shape(sd.tp), bool)
        # Static where the trace knows the mode (designs of the other mode are not admitted).
        self.disagg = (
            sd.prefill_units > 0
            if trace.disagg is None
            else jnp.full(jnp.shape(sd.tp), trace.disagg)
        )
        ffn_here = jnp.where(self.afd, 0.0, 1.0)
        with_draft = sd.spec_method == 1.0

        # KV-parallel decode applies to the pool that holds the KV cache (decode, or attention
        # under AFD); prefill and FFN pools run kvp = 1.
        dd = _design(
            sd, hw_decode, sd.tp, sd.pp, sd.ep, sd.dp, k, tau, self.ctx - 0.5 * osl, osl, sd.kvp
        )
        self.decode = Setup(arch, hw_decode, eff.select(hw_decode.generation), rt, dd)
        g = jnp.maximum(safe_div(sd.ffn_units, sd.ffn_pp, 1.0), 1.0)
        ffn_dp = jnp.maximum(g / sd.ffn_tp, 1.0)
        fd = _design(sd, hw_ffn, sd.ffn_tp, sd.ffn_pp, ffn_dp, ffn_dp, k, tau, isl, osl)
        self.ffn = Setup(arch, hw_ffn, eff.select(hw_ffn.generation), rt, fd)
        one = jnp.ones_like(sd.tp)
        pd = _design(
            sd, hw_prefill, sd.prefill_tp, one, sd.prefill_ep, sd.prefill_dp, k, tau, isl, osl
        )
        prefill_pool = Setup(arch, hw_prefill, eff.select(hw_prefill.generation), rt, pd)
        # Aggregated: the decode pool prefills (same setup); disaggregated: its own pool.
        if trace.disagg is None:
            self.prefill_setup = _select_setup(self.disagg, prefill_pool, self.decode)
        else:
            self.prefill_setup = prefill_pool if trace.disagg else self.decode

        self.decode_workers = safe_div(sd.decode_units, sd.decode_worker)
        self.max_batch = max_sequences(self.decode, self.ctx, with_draft, ffn=ffn_here)
        self.batch = jnp.maximum(
            jnp.where(sd.batch > 0, jnp.minimum(sd.batch, self.max_batch), self.max_batch), 1e-9
        )
        self.decode_weights_fit = weight_bytes_per_gpu(
            self.decode, with_draft, ffn=ffn_here
        ) + workspace_bytes(self.decode) <= usable_bytes(self.decode)
        self.max_context_fits = max_sequences(
            self.decode, profile.max_context, with_draft, ffn=ffn_here
        ) >= sd.dp * (1.0 - 1e-9)
        if trace.afd:
            ffn_mem = weight_bytes_per_gpu(self.ffn, False, attention=0.0)
            ffn_mem = ffn_mem + workspace_bytes(self.ffn)
            self.ffn_fits = (~self.afd) | (ffn_mem <= usable_bytes(self.ffn))
        else:
            self.ffn_fits = jnp.ones(jnp.shape(sd.tp), bool)
        p_mem = weight_bytes_per_gpu(prefill_pool, False) + workspace_bytes(prefill_pool)
        self.prefill_fits = (~self.disagg) | (p_mem <= usable_bytes(prefill_pool))
        self.units_ok = (
            (sd.decode_units >= sd.decode_worker)
            & (~self.disagg | (sd.prefill_units >= sd.prefill_worker))
            & (~self.afd | (sd.ffn_units >= sd.ffn_tp * sd.ffn_pp))
        )

        # Cache tiers live beside the pool that runs prefill.
        self.kv_bytes_per_token = kv_bytes_per_token(arch, sd.kv_bits, isl)
        ps = self.prefill_setup

        def prefill_running():
            return memory_per_gpu(
                ps, self.prefill_per_rank(profile.new_tokens) * ps.design.dp, isl, False
            )

        def decode_running():
            return memory_per_gpu(self.decode, self.batch, self.ctx, with_draft, ffn=ffn_here)

        if trace.disagg is None:
            running_kv = jnp.where(self.disagg, prefill_running(), decode_running())
        else:
            running_kv = prefill_running() if trace.disagg else decode_running()
        free = jnp.maximum(usable_bytes(ps) - running_kv, 0.0)
        per_rank = safe_div(free, kv_bytes_per_sequence_gpu(ps, jnp.ones_like(free)))
        gpus = jnp.where(self.disagg, sd.prefill_units, sd.decode_units)
        ranks = safe_div(gpus, ps.design.tp * ps.design.pp)
        self.capacities = (
            per_rank * ranks,
            safe_div(sd.host_gb_per_gpu * 1e9 * gpus, self.kv_bytes_per_token),
            safe_div(sd.storage_tb * 1e12, self.kv_bytes_per_token),
        )
        worker_gpus = ps.design.tp * ps.design.pp * ps.design.dp
        link = jnp.minimum(ps.hw.host_link_bandwidth_gbs * 1e9, host.bandwidth_per_gpu)
        self.host_bandwidth = worker_gpus * link * ps.eff.link_eff
        nic = worker_gpus * ps.hw.scaleout_bandwidth
        self.storage_bandwidth = jnp.minimum(sd.storage_gbs * 1e9, nic) * ps.eff.link_eff
        # What all the restores share (bytes/s): every prefill GPU's host link; the storage
        # tier's bandwidth, never more than all prefill NICs together.
        self.host_link_total = gpus * link * ps.eff.link_eff
        self.storage_link_total = (
            jnp.minimum(sd.storage_gbs * 1e9, gpus * ps.hw.scaleout_bandwidth) * ps.eff.link_eff
        )
        d = self.decode.design
        decode_nic = d.tp * d.pp * d.dp * hw_decode.scaleout_bandwidth
        handoff_bw = jnp.minimum(nic, decode_nic) * ps.eff.link_eff
        # One RDMA transfer from the prefill to the decode worker: bytes over the narrower
        # end's NICs plus one NIC-to-NIC hop of the slower end (``Hardware.scaleout_hop_us``).
        hop = jnp.maximum(ps.hw.scaleout_hop_us, hw_decode.scaleout_hop_us) * 1e-6
        handoff = safe_div(isl * self.kv_bytes_per_token, handoff_bw) + hop
        # Fixed time of one host-tier restore: the DMA set-up plus the host link's hop.
        self.host_restore_latency = HOST_LATENCY_S + ps.hw.host_link_hop_us * 1e-6
        self.handoff_seconds = jnp.where(self.disagg, handoff, 0.0)

    # ----- steps ------------------------------------------------------------------------------
    def decode_segment(self, batch: Array, k: Array) -> Segment:
        d = self.decode.design
        return Segment(batch / (d.dp * d.pp), 1.0 + k, self.ctx)

    def prefill_per_rank(self, uncached: Array) -> Array:
        """Prompts one prefill rank runs per forward pass (a chunk of ~8K tokens)."""
        return jnp.maximum(safe_div(self.prefill_setup.rt.chunk_tokens, uncached), 1.0)

    def _prefill_segment(self, seqs: Array, uncached: Array) -> Segment:
        return Segment(seqs, uncached, self.profile.input_tokens - uncached, absorbed=False)

    def prefill_one(self, uncached: Array) -> Cost:
        one = jnp.ones_like(uncached)
        return forward_cost(self.prefill_setup, (self._prefill_segment(one, uncached),), one)

    def prefill_throughput(self, uncached: Array) -> tuple[Array, Array]:
        """(requests/s the prefill pool completes at full load, seconds of one batched pass)."""
        d = self.prefill_setup.design
        per_rank = self.prefill_per_rank(uncached)
        seg = self._prefill_segment(per_rank, uncached)
        batch_time = forward_cost(self.prefill_setup, (seg,), per_rank).total
        workers = safe_div(self.sd.prefill_units, d.tp * d.dp)
        return safe_div(workers * d.dp * per_rank, batch_time), batch_time


def _select_setup(flag: Array, a: Setup, b: Setup) -> Setup:
    return jax.tree.map(lambda x, y: jnp.where(flag, x, y), a, b)


def step_extras(p: Pools, sd: SystemDesign, seg: Segment, k: Array) -> tuple[Cost | None, Cost]:
    """(the attention-FFN split step of ``seg``, None where the trace has no FFN pool; the
    drafting cost of ``seg``): the parts of a decode step that do not depend on admitted
    prompts, so the steps with and without prompts share them."""
    split = None
    if p.trace.afd:
        split = afd_step(p.decode, p.ffn, seg, p.decode_workers, sd.microbatches)
    if p.trace.draft_model:
        return split, speculation_cost(p.decode, seg, sd.spec_method, k, sd.draft_params_b)
    zero = Cost(*(jnp.zeros_like(k),) * 5)
    return split, select_cost(sd.spec_method == 1.0, draft_cost(p.decode, seg, k), zero)


def decode_step(
    p: Pools,
    sd: SystemDesign,
    batch: Array,
    k: Array,
    extra: Segment | None = None,
    plain: Cost | None = None,
    extras: tuple[Cost | None, Cost] | None = None,
) -> Cost:
    """One decode step per worker: plain forward (optionally with admitted prompts, aggregated
    serving) or the AFD split, plus drafting. ``plain`` (the forward) and ``extras``
    (``step_extras``) may be passed where the caller has them already."""
    seg = p.decode_segment(batch, k)
    if plain is None:
        segs = (seg,) if extra is None else (seg, extra)
        tokens_out = seg.tokens + (0.0 if extra is None else extra.seqs)
        plain = forward_cost(p.decode, segs, tokens_out)
    split, draft = step_extras(p, sd, seg, k) if extras is None else extras
    step = plain if split is None else select_cost(p.afd, split, plain)
    return step + draft
