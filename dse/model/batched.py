"""Batched evaluation: one ``jit(vmap(evaluate))`` over many design points.

Architectures and hardware are stacked once (``[n_models]``, ``[n_hardware]``); each design
point carries integer indices into them, gathered inside the compiled function, so a batch of
a million designs is three small tables plus one array per design field. Batch sizes are padded
to a power of two (at least 256) so repeated calls with similar sizes do not recompile.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from .architecture import Architecture
from .design import Design
from .efficiency import Efficiency, Runtime
from .hardware import Hardware
from .metrics import Metrics
from .numerics import require_float64
from .serving import evaluate


def stack(items: list) -> object:
    """Stack a list of identical pytrees of scalars into one pytree of arrays."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *items)


def _take(tree, idx):
    return jax.tree.map(lambda x: jnp.take(x, idx, axis=0), tree)


def evaluate_indexed(
    archs: Architecture,
    hws: Hardware,
    eff: Efficiency,
    rt: Runtime,
    model_idx,
    hw_idx,
    design: Design,
    path=None,
) -> Metrics:
    """Metrics of one design point whose architecture and hardware are rows of stacked tables."""
    return evaluate(_take(archs, model_idx), _take(hws, hw_idx), eff, rt, design, path=path)


@functools.partial(jax.jit, static_argnames=("path",))
def _evaluate_many(archs, hws, eff, rt, model_idx, hw_idx, designs, path=None):
    fn = functools.partial(evaluate_indexed, path=path)
    return jax.vmap(fn, in_axes=(None, None, None, None, 0, 0, 0))(
        archs, hws, eff, rt, model_idx, hw_idx, designs
    )


# The one batch shape every sweep is compiled for. A compile of the model costs 1-2 min on a
# 2-core CPU, and a warm call runs ~5K designs/s whatever its size from 256 up (measured on the
# seed study's space: 5.2-5.6K/s in pieces of 256, 4.9K/s in pieces of 4,096), so one shape
# shared by every caller (a study's chunks, the what-if's candidates, ``dse predict``'s rows,
# Dask's tasks, the tests) beats several: a batch runs as whole pieces, the last padded.
PIECE = 256


def evaluate_many(archs, hws, eff, rt, model_idx, hw_idx, designs: Design) -> Metrics:
    """Evaluate ``len(model_idx)`` designs; returns Metrics of numpy arrays (host memory).

    Designs are grouped by serving path (prefill / decode / aggregated / disaggregated serve) so
    each group traces only its own path, then evaluated in pieces of ``PIECE`` (one compiled
    shape per path for any total size) and scattered back into input order."""
    require_float64()
    phase = np.asarray(designs.phase)
    mode = np.asarray(designs.mode)
    paths = np.where(phase == 0.0, 0, np.where(phase == 1.0, 1, np.where(mode == 1.0, 3, 2)))
    n = int(np.shape(model_idx)[0])
    result = None
    for path in np.unique(paths):
        rows = np.nonzero(paths == path)[0]
        part = _evaluate_chunked(
            archs, hws, eff, rt, np.asarray(model_idx)[rows], np.asarray(hw_idx)[rows],
            jax.tree.map(lambda x: np.asarray(x)[rows], designs), int(path),
        )  # fmt: skip
        if result is None:
            result = jax.tree.map(lambda x: np.zeros((n,) + x.shape[1:], x.dtype), part)
        for dst, src in zip(jax.tree.leaves(result), jax.tree.leaves(part)):
            dst[rows] = src
    return result


def run_in_chunks(fn, tree, n: int):
    """``fn`` over ``tree`` (leaves with a leading axis of ``n``) in pieces of ``PIECE``, the
    last padded by repeating the last row, so any ``n`` runs one compiled shape; numpy
    results, input order."""
    size = PIECE
    outs = []
    for start in range(0, n, size):
        stop = min(start + size, n)
        pad = size - (stop - start)

        def piece(x, start=start, stop=stop, pad=pad):
            x = np.asarray(x)[start:stop]
            return np.concatenate([x, np.repeat(x[-1:], pad, axis=0)]) if pad else x

        out = fn(jax.tree.map(piece, tree))
        outs.append(jax.tree.map(lambda x, k=stop - start: np.asarray(x)[:k], out))
    return jax.tree.map(lambda *xs: np.concatenate(xs), *outs)


def _evaluate_chunked(archs, hws, eff, rt, model_idx, hw_idx, designs, path) -> Metrics:
    def fn(t):
        return _evaluate_many(archs, hws, eff, rt, t[0], t[1], t[2], path=path)

    return run_in_chunks(fn, (model_idx, hw_idx, designs), int(np.shape(model_idx)[0]))
