"""Exhaustive search: every point of a discrete space through the vectorized system model,
chunk by chunk, keeping only the running Pareto front (``pareto.Front``).

Categorical ``system`` / ``software`` choices are resolved once into base design values; each
chunk gathers them by index, applies the numeric fields, evaluates in one compiled call (fixed
chunk shape: one compilation for any space size) and merges its feasible points into the front.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ..model.system_batched import evaluate_systems
from ..model.system_design import SYSTEM_FIELDS, SystemDesign
from ..stack import Stack
from .pareto import Front
from .space import Space


@dataclass(frozen=True)
class Objective:
    metric: str  # a SystemMetrics field
    maximize: bool


@dataclass(frozen=True)
class SearchResult:
    front: Front
    evaluated: int
    feasible: int
    space: Space


def _bases(stack: Stack, model: str, space: Space) -> tuple[np.ndarray, dict[tuple, int]]:
    systems = dict(zip(space.fields, space.choices)).get("system", ("vr200_nvl72",))
    softwares = dict(zip(space.fields, space.choices)).get("software", ("default",))
    pairs = list(itertools.product(systems, softwares))
    table = np.array(
        [[stack.design_values(model, s, w)[f] for f in SYSTEM_FIELDS] for s, w in pairs]
    )
    return table, {p: i for i, p in enumerate(pairs)}


def exhaustive_search(
    stack: Stack,
    model: str,
    space: Space,
    objectives: tuple[Objective, ...],
    constraints: dict[str, tuple[float | None, float | None]] | None = None,
    chunk: int = 1 << 14,
) -> SearchResult:
    """Pareto front of ``objectives`` over all feasible points meeting ``constraints``
    (metric -> (min, max), either bound None)."""
    unknown = set(space.fields) - set(SYSTEM_FIELDS) - {"system", "software"}
    if unknown:
        raise ValueError(f"unknown space field(s) {sorted(unknown)}; use SystemDesign fields")
    table, pair_index = _bases(stack, model, space)
    systems = dict(zip(space.fields, space.choices)).get("system", ("vr200_nvl72",))
    softwares = dict(zip(space.fields, space.choices)).get("software", ("default",))
    maximize = tuple(o.maximize for o in objectives)
    front, evaluated, feasible = Front.empty(maximize), 0, 0
    cal = stack.calibration
    for start in range(0, space.size, chunk):
        ids = np.arange(start, min(start + chunk, space.size))
        idx = space.indices(ids)
        s_idx = idx.get("system", np.zeros(len(ids), np.int64))
        w_idx = idx.get("software", np.zeros(len(ids), np.int64))
        rows = np.array([pair_index[(systems[a], softwares[b])] for a, b in zip(s_idx, w_idx)])
        cols = {f: table[rows, j].copy() for j, f in enumerate(SYSTEM_FIELDS)}
        for f, values in zip(space.fields, space.choices):
            if f not in ("system", "software"):
                cols[f] = np.asarray(values, dtype=np.float64)[idx[f]]
        out = evaluate_systems(
            stack.tables, cal.efficiency, cal.runtime, stack.cost, stack.profile,
            SystemDesign(**cols), chunk=chunk,
        )  # fmt: skip
        ok = out.feasible > 0.5
        for metric, (lo, hi) in (constraints or {}).items():
            v = getattr(out, metric)
            ok &= (v >= lo if lo is not None else True) & (v <= hi if hi is not None else True)
        values = np.stack([getattr(out, o.metric) for o in objectives], axis=1)
        front = front.merge(values[ok], ids[ok])
        evaluated += len(ids)
        feasible += int(ok.sum())
    return SearchResult(front, evaluated, feasible, space)
