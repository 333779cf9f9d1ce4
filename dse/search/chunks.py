"""One chunk of an exhaustive sweep: the points ``lo .. lo + chunk`` of a space through the
model, checked against the constraints (a pure function of its inputs, so a chunk gives the same
outcome in this process or on a Dask worker: ``exhaustive.py``, ``distributed.py``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..progress import Progress
from .evaluate import Evaluator
from .objectives import Constraint, Objective, meets


@dataclass(frozen=True)
class ChunkOutcome:
    """One chunk of the sweep: its point ids, which of them meet the constraints, their
    objective values and (base system, software) pairs, and, for small spaces, the table."""

    ids: np.ndarray
    ok: np.ndarray
    values: np.ndarray
    pair: np.ndarray
    table: pd.DataFrame | None


def evaluate_span(
    ev: Evaluator,
    objectives: tuple[Objective, ...],
    constraints: tuple[Constraint, ...],
    keep: bool,
    lo: int,
    progress: Progress | None = None,
) -> ChunkOutcome:
    """Evaluate the chunk of points ``lo .. lo + chunk`` of ``ev``'s space."""
    ids = np.arange(lo, min(lo + ev.chunk, ev.space.size))
    cols = ev.decode(ids)
    metrics = ev.evaluate(cols, progress=progress)  # the first call compiles: a phase
    ok = meets(metrics, constraints)
    values = np.stack([metrics[o.metric] for o in objectives], axis=1)
    table = None
    if keep:
        table = ev.frame(cols, metrics)
        table.insert(0, "point", ids)
        table["meets_constraints"] = ok
    return ChunkOutcome(ids, ok, values[ok], cols["_pair"][ok], table)
