"""Batched system evaluation: one ``jit(vmap(evaluate_system))`` over many system designs.

Architectures, accelerators and host tiers are stacked tables; each design carries int32
indices into them (``model``, ``decode_hw``, ``prefill_hw``, ``ffn_hw``, ``host``), gathered
inside the compiled function. The workload profile, efficiencies, runtime and cost parameters
are shared by the whole batch. Batches are padded to a power of two (at least 256) and cut in
fixed-size chunks, so any number of designs costs one compilation.
"""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .architecture import Architecture
from .batched import run_in_chunks
from .hardware import Hardware, HostTier
from .hypothetical import apply_where, hypothetical_hardware
from .numerics import require_float64
from .system import evaluate_system
from .system_design import SystemDesign
from .system_metrics import SystemMetrics


class SystemTables(eqx.Module):
    """Stacked catalogs a batch of system designs indexes into."""

    archs: Architecture
    hardware: Hardware
    hosts: HostTier


def _take(tree, idx):
    return jax.tree.map(lambda x: jnp.take(x, idx, axis=0), tree)


def evaluate_system_indexed(
    tables: SystemTables, eff, rt, cost, profile, sd: SystemDesign, *, derivatives: bool = True
):
    """One system design whose catalog entries are rows of ``tables``; the design's
    hypothetical-hardware knobs replace the decode accelerator type in every pool using it.
    ``derivatives``: see :func:`~dse.model.system.evaluate_system`."""
    decode = hypothetical_hardware(_take(tables.hardware, sd.decode_hw), sd, cost)
    prefill = _take(tables.hardware, sd.prefill_hw)
    ffn = _take(tables.hardware, sd.ffn_hw)
    return evaluate_system(
        _take(tables.archs, sd.model),
        decode,
        apply_where(sd.prefill_hw == sd.decode_hw, decode, prefill),
        apply_where(sd.ffn_hw == sd.decode_hw, decode, ffn),
        _take(tables.hosts, sd.host),
        eff,
        rt,
        cost,
        profile,
        sd,
        derivatives=derivatives,
    )


@jax.jit
def evaluate_chunk(tables, eff, rt, cost, profile, designs) -> SystemMetrics:
    """The sweep's compiled program: a chunk of designs (vmap), values only."""
    # Values only: a sweep never differentiates (the Jacobian has its own kernel,
    # dse/search/gradients.py), so the implicit-derivative pass is left out of this program.
    one = functools.partial(evaluate_system_indexed, derivatives=False)
    fn = jax.vmap(one, in_axes=(None, None, None, None, None, 0))
    return fn(tables, eff, rt, cost, profile, designs)


def evaluate_systems(
    tables: SystemTables,
    eff,
    rt,
    cost,
    profile,
    designs: SystemDesign,
    *,
    kernel=evaluate_chunk,
) -> SystemMetrics:
    """Evaluate a batch of system designs (arrays of equal length); numpy results. ``kernel``:
    what runs each chunk, :func:`evaluate_chunk` or a program loaded in its place
    (``Stack`` passes one exported ahead of time, :mod:`dse.exported`)."""
    require_float64()

    def fn(d):
        return kernel(tables, eff, rt, cost, profile, d)

    return run_in_chunks(fn, designs, int(np.shape(designs.model)[0]))


__all__ = ["SystemTables", "evaluate_chunk", "evaluate_system_indexed", "evaluate_systems"]
