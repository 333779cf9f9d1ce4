"""A whole serving system for a workload: hardware pools, software settings, cache tiers.

One :class:`SystemDesign` is one deployment (a "replica" of the co-designed stack):

* a **decode pool** of ``decode_units`` accelerators in workers of ``tp * pp * dp`` (with
  attention-FFN disaggregation it runs attention only), its KV cache optionally split
  ``kvp`` ways over each TP group (KV-parallel decode, ``dse.model.layer``);
* an optional **prefill pool** (``prefill_units > 0``: prefill/decode disaggregation, xPyD)
  of workers ``prefill_tp * prefill_dp`` on its own hardware type (``pp = 1``);
* an optional **FFN pool** (``ffn_units > 0``: attention-FFN disaggregation) laid out as
  ``ffn_pp`` groups of layers with ``ffn_tp``-way tensor parallel inside experts, fed in
  ``microbatches`` ping-pong micro-batches;
* precision per tensor class (weights, GEMM activations, KV), speculative decoding
  (method, draft length, draft-model size), prompt caching on/off and the KV tiers (host
  memory per GPU, context storage capacity and bandwidth);
* six continuous hypothetical-hardware knobs (``flops_scale`` ... ``scaleout_bw_scale``, 1.0 =
  the catalog chip) that scale the decode accelerator's specs, price and power
  (:mod:`dse.model.hypothetical`).

Hardware types are indices into stacked tables (``*_hw`` into accelerators, ``host`` into
host tiers, ``model`` into architectures), so a batch of systems is one pytree of arrays: the
indices int32, every other field float64 (discrete codes such as ``spec_method`` are compared
with ``==`` and never differentiated). Build one with :func:`system_design`.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

SYSTEM_DEFAULTS: dict[str, float] = dict(
    model=0.0,  # index into the stacked architectures
    decode_hw=0.0,  # indices into the stacked accelerators
    prefill_hw=0.0,
    ffn_hw=0.0,
    host=0.0,  # index into the stacked host tiers
    weight_bits=8.0,
    act_bits=0.0,  # 0: as wide as the weights
    kv_bits=8.0,
    tp=1.0,
    pp=1.0,
    ep=1.0,
    dp=1.0,
    kvp=1.0,  # KV-parallel ways of the decode pool's attention (Helix; divides tp)
    decode_units=1.0,
    batch=0.0,  # sequences per decode worker; 0: the most that fit
    prefill_tp=1.0,
    prefill_ep=1.0,
    prefill_dp=1.0,
    prefill_units=0.0,  # 0: aggregated serving (the decode pool prefills too)
    ffn_tp=1.0,
    ffn_pp=1.0,
    ffn_units=0.0,  # 0: no attention-FFN disaggregation
    microbatches=2.0,
    spec_method=0.0,  # index into speculation.SPEC_METHODS
    spec_k=0.0,
    draft_params_b=1.0,
    prompt_cache=1.0,
    framework=1.0,  # index into efficiency.FRAMEWORKS: TensorRT-LLM (GPU pools; SRAM-first: static)
    host_gb_per_gpu=0.0,
    storage_tb=0.0,
    storage_gbs=0.0,
    # Hypothetical-hardware knobs on the decode pool's accelerator (model/hypothetical.py).
    flops_scale=1.0,
    hbm_bw_scale=1.0,
    hbm_gb_scale=1.0,
    sram_scale=1.0,
    scaleup_bw_scale=1.0,
    scaleout_bw_scale=1.0,
)


class SystemDesign(eqx.Module):
    model: Array
    decode_hw: Array
    prefill_hw: Array
    ffn_hw: Array
    host: Array
    weight_bits: Array
    act_bits: Array
    kv_bits: Array
    tp: Array
    pp: Array
    ep: Array
    dp: Array
    kvp: Array
    decode_units: Array
    batch: Array
    prefill_tp: Array
    prefill_ep: Array
    prefill_dp: Array
    prefill_units: Array
    ffn_tp: Array
    ffn_pp: Array
    ffn_units: Array
    microbatches: Array
    spec_method: Array
    spec_k: Array
    draft_params_b: Array
    prompt_cache: Array
    framework: Array
    host_gb_per_gpu: Array
    storage_tb: Array
    storage_gbs: Array
    flops_scale: Array
    hbm_bw_scale: Array
    hbm_gb_scale: Array
    sram_scale: Array
    scaleup_bw_scale: Array
    scaleout_bw_scale: Array

    @property
    def decode_worker(self) -> Array:
        return self.tp * self.pp * self.dp

    @property
    def prefill_worker(self) -> Array:
        return self.prefill_tp * self.prefill_dp

    @property
    def units(self) -> Array:
        return self.decode_units + self.prefill_units + self.ffn_units


SYSTEM_FIELDS = tuple(SystemDesign.__dataclass_fields__)
# Rows of the stacked catalog tables (``system_batched.SystemTables``): int32, gathered with
# ``jnp.take``; every other field is float64.
INDEX_FIELDS: tuple[str, ...] = ("model", "decode_hw", "prefill_hw", "ffn_hw", "host")


def system_design(columns) -> SystemDesign:
    """A (batch of) system design(s) from a value or an array per ``SYSTEM_FIELDS`` field, each
    in its dtype: the catalog indices (``INDEX_FIELDS``) int32 numpy arrays, the rest float64
    (numpy stays numpy, JAX values stay JAX, so traced knobs keep their derivatives). An
    index that is not a whole number is refused rather than truncated."""
    out = {}
    for f in SYSTEM_FIELDS:
        value = columns[f]
        if f in INDEX_FIELDS:
            if isinstance(value, jax.core.Tracer):
                raise TypeError(f"{f} is a catalog index: give it as data, not a traced value")
            whole = np.asarray(value, dtype=np.float64)
            if not np.array_equal(whole, np.round(whole)):
                raise ValueError(f"{f}={whole!r} is a catalog index: give a whole number")
            out[f] = whole.astype(np.int32)
        elif isinstance(value, jax.Array):
            out[f] = jnp.asarray(value, jnp.float64)
        else:
            out[f] = np.asarray(value, dtype=np.float64)
    return SystemDesign(**out)


def make_system(**kw: float) -> SystemDesign:
    """A system design from keyword values (defaults in ``SYSTEM_DEFAULTS``)."""
    unknown = set(kw) - set(SYSTEM_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown system field(s): {sorted(unknown)}")
    return system_design({**SYSTEM_DEFAULTS, **kw})
