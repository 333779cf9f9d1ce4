"""Exhaustive-sweep checkpoints: where the sweep is and the front so far, in one ``.npz``.

Written atomically (temporary file + rename) every few chunks, so ``kill -9`` loses at most
those chunks; a checkpoint of another space (different size or objectives) is ignored with a
warning rather than mixed into a new sweep.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..files import atomic_path
from .pareto import Front

log = logging.getLogger("dse.search")


def save_checkpoint(path: Path, next_start: int, front: Front, counts, space_size: int) -> None:
    with atomic_path(path) as tmp:
        np.savez(
            tmp, next_start=next_start, values=front.values, ids=front.ids,
            maximize=np.array(front.maximize), counts=np.array(counts), space_size=space_size,
        )  # fmt: skip


def load_checkpoint(path: Path, space_size: int, maximize) -> tuple[int, Front, tuple] | None:
    if not path.exists():
        return None
    with np.load(path) as z:
        same = int(z["space_size"]) == space_size and tuple(z["maximize"]) == tuple(maximize)
        if not same:
            log.warning("%s belongs to another space or objectives; starting afresh", path)
            return None
        front = Front(tuple(bool(x) for x in z["maximize"]), z["values"], z["ids"])
        return int(z["next_start"]), front, tuple(int(c) for c in z["counts"])
