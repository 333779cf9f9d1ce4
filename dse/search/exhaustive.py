"""Exhaustive search: every point of a discrete space through the vectorized model, chunk by
chunk, keeping only the running Pareto front (``pareto.Front``) and, for small spaces, every
evaluated point.

Chunks have a fixed shape (one compilation for any space size) and memory stays flat: the
front is merged per chunk with moocore and design ids are global point ids, decoded again at
the end. A ``checkpoint`` callback receives ``(next_start, front, counts)`` after each chunk so
a study can persist progress and ``start`` resumes from it. A ``progress``
(:mod:`dse.progress`) shows the sweep per chunk and the first chunk's compilation as a phase.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from ..progress import Progress
from ..stack import Stack
from ..values import count
from .checkpoint import load_checkpoint, save_checkpoint
from .chunks import ChunkOutcome, evaluate_span
from .engine import Engine, Found, Problem, SearchResult
from .evaluate import Evaluator
from .objectives import Constraint, Objective
from .pareto import Front, pareto_mask
from .space import Space

log = logging.getLogger("dse.search")

KEEP_ALL_POINTS = 250_000  # above this, only the front is tabulated (memory)


# How a sweep's chunks are evaluated: (evaluator, objectives, constraints, keep, chunk starts)
# in, their outcomes out in the same order (in this process by default;
# ``distributed.dask_chunks`` on a Dask cluster).
Chunks = Callable[
    [Evaluator, tuple[Objective, ...], tuple[Constraint, ...], bool, Sequence[int]],
    Iterator[ChunkOutcome],
]


def exhaustive_search(
    stack: Stack,
    model: str,
    space: Space,
    objectives: tuple[Objective, ...],
    constraints: tuple[Constraint, ...] | dict | None = None,
    chunk: int = 1 << 13,
    keep_points: bool | None = None,
    start: int = 0,
    front: Front | None = None,
    counts: tuple[int, int] = (0, 0),
    checkpoint: Callable | None = None,
    evaluator: Evaluator | None = None,
    progress: Progress | None = None,
    chunks: Chunks | None = None,
) -> SearchResult:
    """Pareto front of ``objectives`` over every point meeting ``constraints``, per subspace
    (system): the result's front holds each system's own non-dominated points, so systems that
    never reach the global frontier still show their trade-off; ``global_front`` filters it.

    ``chunks`` evaluates the chunks (default: one after another in this process, the first
    call's compile shown as a phase). Whatever runs them, outcomes are merged in
    chunk order, so the front, the counts and the checkpoints are the same bit for bit."""
    constraints = _as_constraints(constraints)
    ev = evaluator or Evaluator(stack, model, space, chunk=chunk)
    maximize = tuple(o.maximize for o in objectives)
    front = front if front is not None else Front.empty(maximize)
    evaluated, feasible = counts
    keep = space.size <= KEEP_ALL_POINTS if keep_points is None else keep_points
    tables = []
    progress = progress if progress is not None else Progress()
    starts = range(start, space.size, ev.chunk)
    if chunks is None:
        outcomes = (evaluate_span(ev, objectives, constraints, keep, lo, progress) for lo in starts)
    else:
        outcomes = chunks(ev, objectives, constraints, keep, starts)
    with progress.task(f"sweep {space.size:,} designs", total=space.size, completed=start) as task:
        for out in outcomes:
            front = _merge_per_system(ev, front, out.values, out.ids[out.ok], out.pair)
            evaluated += len(out.ids)
            feasible += int(out.ok.sum())
            if out.table is not None:
                tables.append(out.table)
            if checkpoint is not None:
                checkpoint(int(out.ids[-1]) + 1, front, (evaluated, feasible))
            task.advance(len(out.ids))
    points = pd.concat(tables, ignore_index=True) if tables else None
    return SearchResult(front, evaluated, feasible, space, points, front_frame(ev, front))


def _merge_per_system(ev: Evaluator, front: Front, values, ids, pair) -> Front:
    """Merge a chunk into the per-system fronts (one Front holding all; a point's system is
    that of its base (system, software) pair)."""
    system = ev.pair_system[pair]
    old = ev.pair_system[ev.decode(front.ids)["_pair"]] if len(front.ids) else system[:0]
    parts = []
    for k in np.union1d(np.unique(old), np.unique(system)):
        mine = Front(front.maximize, front.values[old == k], front.ids[old == k])
        parts.append(mine.merge(values[system == k], ids[system == k]))
    if not parts:
        return front
    order = np.argsort(np.concatenate([p.ids for p in parts]), kind="stable")
    return Front(
        front.maximize,
        np.concatenate([p.values for p in parts])[order],
        np.concatenate([p.ids for p in parts])[order],
    )


def front_frame(ev: Evaluator, front: Front) -> pd.DataFrame:
    """The front's designs re-evaluated and tabulated (ids are global point ids), with
    ``on_frontier``: non-dominated across all systems, not only within its own."""
    if not len(front.ids):
        return pd.DataFrame()
    cols = ev.decode(front.ids)
    table = ev.frame(cols, ev.evaluate(cols))
    table.insert(0, "point", front.ids)
    table["on_frontier"] = pareto_mask(front.values, front.maximize)
    return table


def _as_constraints(constraints) -> tuple[Constraint, ...]:
    if constraints is None:
        return ()
    if isinstance(constraints, dict):  # metric -> (min, max)
        return tuple(Constraint(m, lo, hi) for m, (lo, hi) in constraints.items())
    return tuple(constraints)


@dataclass(frozen=True)
class Exhaustive(Engine):
    """Every point of the space (``conf/search/exhaustive.yaml``), resumed from
    ``checkpoint.npz`` in the run folder when the same configuration wrote it.

    ``chunk``: designs per compiled call; ``keep_points``: tabulate every point (None: when the
    space has at most :data:`KEEP_ALL_POINTS`); ``resume``: continue an interrupted sweep (small
    spaces, every point tabulated, simply rerun); ``checkpoint_every``: chunks between
    checkpoints; ``cluster``: where chunks run — None in this process, ``"local"`` on a Dask
    ``LocalCluster`` of ``workers`` processes, or a Dask scheduler's address
    (``tcp://host:8786``, whose workers have dse installed); the tables are the same bit for bit
    (``distributed.py``)."""

    name: ClassVar[str] = "exhaustive"
    chunk: int
    keep_points: bool | None
    resume: bool
    checkpoint_every: int
    cluster: str | None
    workers: int

    def __post_init__(self):
        object.__setattr__(self, "chunk", count("search.chunk", self.chunk))
        object.__setattr__(
            self, "checkpoint_every", count("search.checkpoint_every", self.checkpoint_every)
        )
        object.__setattr__(self, "workers", count("search.workers", self.workers))
        if self.cluster is not None:
            from .distributed import cluster_address  # Dask only when a cluster is asked for

            object.__setattr__(self, "cluster", cluster_address(self.cluster))

    def run(self, problem: Problem, progress: Progress) -> Found:
        space, out = problem.space, problem.out
        maximize = tuple(o.maximize for o in problem.objectives)
        keep = space.size <= KEEP_ALL_POINTS if self.keep_points is None else bool(self.keep_points)
        resume = bool(self.resume) and not keep
        path = out / "checkpoint.npz"
        state = load_checkpoint(path, space.size, maximize, problem.fingerprint) if resume else None
        start, front, counts = state or (0, None, (0, 0))
        if start:
            log.info("exhaustive: resuming at point %d of %d", start, space.size)
        tick = {"n": 0}

        def checkpoint(next_start, front, counts):
            tick["n"] += 1
            if tick["n"] % self.checkpoint_every == 0 or next_start >= space.size:
                save_checkpoint(path, next_start, front, counts, space.size, problem.fingerprint)

        evaluator = Evaluator(problem.stack, problem.model, space, chunk=self.chunk)
        cluster = contextlib.nullcontext()
        if self.cluster is not None and start < space.size:
            from .distributed import dask_client

            cluster = dask_client(self.cluster, self.workers, progress)
        with cluster as client:
            chunks = None
            if client is not None:
                from .distributed import dask_chunks

                chunks = dask_chunks(client)
            result = exhaustive_search(
                problem.stack, problem.model, space, problem.objectives, problem.constraints,
                keep_points=keep, start=start, front=front, counts=counts,
                checkpoint=checkpoint, evaluator=evaluator, progress=progress, chunks=chunks,
            )  # fmt: skip
        return Found(result)
