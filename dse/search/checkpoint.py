"""Exhaustive-sweep checkpoints: where the sweep is and the front so far, in one ``.npz``.

Written atomically (temporary file + rename) every few chunks, so ``kill -9`` loses at most
those chunks. A checkpoint is only resumed by the configuration that wrote it (the same space,
objectives and a fingerprint of every setting that changes results); another one, or a file
that cannot be read, is set aside with a warning that says why the earlier progress is not
used, never mixed into a new sweep.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..files import atomic_path
from .pareto import Front

log = logging.getLogger("dse.search")


def save_checkpoint(
    path: Path, next_start: int, front: Front, counts, space_size: int, fingerprint: str = ""
) -> None:
    with atomic_path(path) as tmp:
        np.savez(
            tmp, next_start=next_start, values=front.values, ids=front.ids,
            maximize=np.array(front.maximize), counts=np.array(counts), space_size=space_size,
            fingerprint=np.array(fingerprint),
        )  # fmt: skip


RERUN = "to resume it, rerun with the configuration that wrote it (or choose another run= name)"


def _set_aside(path: Path, why: str, advice: str = RERUN) -> None:
    """Keep an unusable checkpoint beside the run (``checkpoint.npz.stale``) and say so."""
    stale = path.with_name(path.name + ".stale")
    try:
        path.replace(stale)
        kept = f"kept as {stale.name}"
    except OSError:
        kept = "left in place"
    log.warning(
        "%s %s; the sweep starts afresh and its earlier progress is not used (%s); %s",
        path, why, kept, advice,
    )  # fmt: skip


def load_checkpoint(
    path: Path, space_size: int, maximize, fingerprint: str = ""
) -> tuple[int, Front, tuple] | None:
    if not path.exists():
        return None
    try:
        with open(path, "rb") as fh, np.load(fh) as z:
            size, saved_max = int(z["space_size"]), tuple(bool(x) for x in z["maximize"])
            saved_print = str(z["fingerprint"]) if "fingerprint" in z.files else ""
            state = (
                int(z["next_start"]),
                Front(saved_max, z["values"], z["ids"]),
                tuple(int(c) for c in z["counts"]),
            )
    except Exception as e:  # a damaged file: BadZipFile, a missing array, a truncated write
        _set_aside(
            path, f"cannot be read ({e.__class__.__name__})", "nothing else is needed"
        )
        return None
    if size != space_size or saved_max != tuple(bool(m) for m in maximize):
        _set_aside(path, "belongs to another space or objectives")
        return None
    if saved_print != fingerprint:
        _set_aside(path, "was written by another configuration (model, workload, costs, "
                         "constraints or calibration changed)")  # fmt: skip
        return None
    return state
