"""Which told batch each stored trial belongs to, so a killed or shared study loses nothing
and counts nothing twice.

Every trial dse tells carries three user attributes: its batch (``w<worker>@<n>``: the worker
and how many trials that worker's sampler had seen when it asked the batch), its position in
the batch and the batch's size. A batch is appended to the storage trial by trial, so ``kill
-9`` can leave its first few trials stored and the rest not. On restart the worker holds such
a batch back, asks the same batch again (the sampler is seeded by the batch key, and it sees
exactly the trials it saw the first time) and stores only the missing positions: the storage
ends up holding what an uninterrupted run would have written, in the same order.

Trials of other workers (or a worker's unfinished batch it will not redo) are simply added to
the local copy at the next batch boundary: that is how workers see each other's results.
"""

from __future__ import annotations

import numpy as np
import optuna
from optuna.trial import FrozenTrial

BATCH, POSITION, SIZE = "dse_batch", "dse_pos", "dse_size"
COMPLETE = optuna.trial.TrialState.COMPLETE


def batch_key(worker: int, seen: int) -> str:
    return f"w{worker}@{seen}"


def batch_seed(seed: int, worker: int, seen: int) -> int:
    """The sampler seed of one batch: a function of the key only, so a redone batch is the same."""
    return int(np.random.SeedSequence([seed, worker, seen]).generate_state(1)[0])


def trial_key(t: FrozenTrial) -> tuple[str, int]:
    """``(batch, position)``; trials told by other tools count as batches of one."""
    if BATCH in t.user_attrs:
        return str(t.user_attrs[BATCH]), int(t.user_attrs[POSITION])
    return f"#{t.number}", 0


def _seen(key: str) -> int:
    return int(key.split("@", 1)[1])


def sync(
    local: optuna.Study, stored: list[FrozenTrial], known: set, worker: int
) -> dict[int, FrozenTrial]:
    """Add to ``local`` (in storage order) every complete stored trial it lacks, except this
    worker's unfinished batch when it is the very batch the worker asks next; that one's stored
    trials are returned by position. ``known`` (the keys ``local`` holds) is updated."""
    new = [t for t in stored if t.state == COMPLETE and trial_key(t) not in known]
    mine: dict[str, list[FrozenTrial]] = {}
    for t in new:
        key = trial_key(t)[0]
        if key.startswith(f"w{worker}@"):
            mine.setdefault(key, []).append(t)
    held: list[FrozenTrial] = []
    held_now = len(local.get_trials(deepcopy=False))
    for key, trials in mine.items():
        unfinished = len({trial_key(t) for t in trials}) < int(trials[0].user_attrs[SIZE])
        if unfinished and held_now + len(new) - len(trials) == _seen(key):
            held = trials
            break
    skip = {id(t) for t in held}
    add = [t for t in new if id(t) not in skip]
    local.add_trials(add)
    known.update(trial_key(t) for t in add)
    return {int(t.user_attrs[POSITION]): t for t in held}


def label(trial: optuna.Trial, key: str, position: int, size: int) -> None:
    trial.set_user_attr(BATCH, key)
    trial.set_user_attr(POSITION, position)
    trial.set_user_attr(SIZE, size)


def unique(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """First stored copy of each (batch, position): a guard against two workers wrongly given
    the same ``search.worker`` on a database (the journal refuses that outright)."""
    seen, out = set(), []
    for t in trials:
        key = trial_key(t)
        if key not in seen:
            seen.add(key)
            out.append(t)
    return out


__all__ = ["batch_key", "batch_seed", "label", "sync", "trial_key", "unique"]
