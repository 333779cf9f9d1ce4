"""Optuna 5 multi-objective search: ask a batch, evaluate it in one vectorized call, tell.

Optuna's define-by-run trials fit the space's union of products: a trial first picks the
subspace (its system, or ``<system>[i]`` where a system lists several), then only that
subspace's fields, so LPX chip counts are never sampled for a GPU rack. Fields shared by every
subspace keep one parameter name (NSGA-II crosses them over between systems); a subspace's own
fields are named ``<subspace>/<field>``.

The model's feasibility and every constraint go to ``trial.set_constraint`` (Optuna 5; the
``constraints_func`` sampler argument is deprecated), as relative violations (<= 0 = met).

Persistence (:mod:`.storage`, :mod:`.batches`): a journal file in the run folder (one machine,
any number of worker processes) or any Optuna database URL (``postgresql://...``: many
machines). Sampling runs on a local in-memory copy; each told batch is appended to the storage
and other workers' trials are pulled in at batch boundaries. Each batch's sampler is seeded by
``(seed, worker, trials seen)``, so a run killed at any point and restarted with the same command
stores exactly the trials an uninterrupted run would have, and its front is identical. The front
is rebuilt from *all* of the study's stored trials by re-evaluating their parameters (cheap,
vectorized), so results never depend on which process told which trial.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import optuna

from ..progress import Progress
from ..values import count
from .batches import batch_key, batch_seed, label, sync, unique
from .engine import Engine, Found, Problem, SearchResult
from .evaluate import Evaluator
from .objectives import Constraint, Objective, meets, violations
from .pareto import Front, pareto_mask
from .samplers import SAMPLERS, make_sampler
from .storage import make_storage, open_study, worker_slot

COMPLETE = optuna.trial.TrialState.COMPLETE


def _params(ev: Evaluator):
    """Per product: [(param name, field, choices or None for continuous)]."""
    space = ev.space
    continuous = dict(space.continuous)
    common = set.intersection(*(set(zip(p.fields, map(tuple, p.choices))) for p in space.products))
    out = []
    for p in space.products:
        entries = []
        for field, choices in zip(p.fields, p.choices):
            if field == "system" and len(space.products) > 1:
                continue
            if field in continuous:
                entries.append((field, field, None))
            else:
                name = field if (field, tuple(choices)) in common else f"{p.key}/{field}"
                entries.append((name, field, tuple(choices)))
        out.append(entries)
    return out


def _suggest(trial, ev: Evaluator, params) -> tuple[int, dict[str, int], dict[str, float]]:
    space = ev.space
    k = 0
    if len(space.products) > 1:
        names = [p.key for p in space.products]
        k = names.index(trial.suggest_categorical("system", names))
    idx, floats = {"system": 0}, {}
    cont = dict(space.continuous)
    for name, field, choices in params[k]:
        if choices is None:
            c = cont[field]
            floats[field] = trial.suggest_float(name, c.low, c.high, log=c.log)
        else:
            value = trial.suggest_categorical(name, list(choices))
            idx[field] = list(choices).index(value)
    return k, idx, floats


def _columns(ev: Evaluator, picks) -> dict[str, np.ndarray]:
    product = np.array([k for k, _, _ in picks])
    idx = {f: np.array([i.get(f, 0) for _, i, _ in picks]) for f in ev.space.fields}
    cont = [f for f, _ in ev.space.continuous]
    cols = ev.columns(product, idx)
    for f in cont:  # a continuous value replaces the grid point of its product
        cols[f] = np.array([fl.get(f, cols[f][j]) for j, (_, _, fl) in enumerate(picks)])
    return cols


def optuna_search(
    ev: Evaluator,
    objectives: tuple[Objective, ...],
    constraints: tuple[Constraint, ...] = (),
    *,
    n_trials: int = 2000,
    batch: int = 256,
    sampler: str = "nsga2",
    population: int = 100,
    seed: int = 0,
    storage: str | None = None,
    study_name: str = "dse",
    worker: int = 0,
    progress: Progress | None = None,
) -> tuple[SearchResult, optuna.Study]:
    """Run (or resume, or join) a study until it holds ``n_trials`` complete trials.

    Sampling happens on a local in-memory copy of the study; each told batch is appended to
    the storage in bulk (a journal file appends one record per suggest/constraint/tell when
    sampled on directly, measured 20x slower) and, before each batch, trials other workers
    stored are pulled in (:mod:`.batches`). ``worker``: this process's number among workers
    sharing the storage (0, 1, ...). ``progress`` (:mod:`dse.progress`) shows a task ``optuna
    <sampler>`` of ``n_trials`` trials, stored ones counted as done."""
    callback = None
    if progress is not None and not isinstance(progress, Progress) and callable(progress):
        callback, progress = progress, None  # deprecated: progress(done, n_trials) per batch
    progress = progress if progress is not None else Progress()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    make_sampler(sampler, seed, population)  # a bad name fails before the storage is touched
    directions = ["maximize" if o.maximize else "minimize" for o in objectives]
    persistent = open_study(study_name, storage, directions)
    local = optuna.create_study(directions=directions)
    params, known = _params(ev), set()
    names = ["feasible"] + [c.metric for c in constraints]
    with worker_slot(storage, worker):
        stored = sync(local, persistent.get_trials(deepcopy=False), known, worker)
        seen = len(local.get_trials(deepcopy=False))
        task = progress.task(f"optuna {str(sampler).lower()}", total=n_trials, unit="trials",
                             completed=min(seen, n_trials))  # fmt: skip
        with task:
            while seen < n_trials:
                size, key = min(batch, n_trials - seen), batch_key(worker, seen)
                # Seeded by the batch key, so a batch redone after a crash is the same batch.
                local.sampler = make_sampler(sampler, batch_seed(seed, worker, seen), population)
                _forget_parents(local)
                trials = [local.ask() for _ in range(size)]
                picks = [_suggest(t, ev, params) for t in trials]
                metrics = ev.evaluate(_columns(ev, picks), progress=progress)
                viol = violations(metrics, constraints)
                values = np.stack([metrics[o.metric] for o in objectives], axis=1)
                for j, trial in enumerate(trials):
                    label(trial, key, j, size)
                    for name, v in zip(names, viol[j]):
                        trial.set_constraint(name, float(v))
                    local.tell(trial, [float(x) for x in values[j]])
                told = local.get_trials(deepcopy=False)[-size:]
                persistent.add_trials([t for j, t in enumerate(told) if j not in stored])
                known.update((key, j) for j in range(size))
                stored = sync(local, persistent.get_trials(deepcopy=False), known, worker)
                before, seen = seen, len(local.get_trials(deepcopy=False))
                task.advance(min(seen, n_trials) - min(before, n_trials))
                if callback is not None:
                    callback(min(seen, n_trials), n_trials)
    return study_result(ev, persistent, objectives, constraints), persistent


def _forget_parents(study: optuna.Study) -> None:
    """NSGA samplers cache each generation's parents in the study, chosen with the random state
    of the batch that first needed them (NSGA-III breaks niche ties at random). When a
    generation spans batches (population > batch) a resumed run would choose them again with
    another batch's state; forgetting the cache at every batch boundary has every batch choose
    them with its own seeded state, killed or not. (Our local in-memory copy only; Optuna has no
    public call to drop a study attribute, and ``None`` reads as "not cached".)"""
    storage, study_id = study._storage, study._study_id
    for key in storage.get_study_system_attrs(study_id):
        if ":parent:" in key:
            storage.set_study_system_attr(study_id, key, None)


def study_result(ev: Evaluator, study, objectives, constraints) -> SearchResult:
    """Every complete trial of ``study`` re-evaluated: all points, the front, the counts."""
    trials = unique(study.get_trials(deepcopy=False, states=(COMPLETE,)))
    if not trials:
        return SearchResult(Front.empty(tuple(o.maximize for o in objectives)), 0, 0, ev.space)
    picks = [_picks_from_params(ev, t.params) for t in trials]
    cols = _columns(ev, picks)
    metrics = ev.evaluate(cols)
    ok = meets(metrics, constraints)
    table = ev.frame(cols, metrics)
    table.insert(0, "trial", [t.number for t in trials])
    table["meets_constraints"] = ok
    values = np.stack([metrics[o.metric] for o in objectives], axis=1)
    ids = np.array([t.number for t in trials])
    maximize = tuple(o.maximize for o in objectives)
    front = Front.empty(maximize)
    for system in table["system"].unique():  # per-system fronts, as the exhaustive engine
        mine = ok & (table["system"] == system).to_numpy()
        front = Front(
            maximize, *_concat(front, Front.empty(maximize).merge(values[mine], ids[mine]))
        )
    front_table = table[table["trial"].isin(front.ids)].reset_index(drop=True)
    on = pareto_mask(front_table[[o.metric for o in objectives]].to_numpy(), maximize)
    front_table["on_frontier"] = on
    return SearchResult(front, len(trials), int(ok.sum()), ev.space, table, front_table)


def _concat(a: Front, b: Front):
    return np.concatenate([a.values, b.values]), np.concatenate([a.ids, b.ids])


def _picks_from_params(ev: Evaluator, p: dict):
    space = ev.space
    k = 0
    if len(space.products) > 1:
        k = [q.name for q in space.products].index(p["system"])
    idx, floats = {"system": 0}, {}
    for name, field, choices in _params(ev)[k]:
        if choices is None:
            floats[field] = float(p[name])
        else:
            idx[field] = list(choices).index(p[name])
    return k, idx, floats


__all__ = ["SAMPLERS", "make_sampler", "make_storage", "optuna_search", "study_result"]


@dataclass(frozen=True)
class Optuna(Engine):
    """Batched multi-objective Optuna study (``conf/search/optuna.yaml``): ``sampler`` (one of
    :data:`SAMPLERS`, seeded by ``seed``), ``n_trials`` in asks of ``batch`` (``population``
    for the evolutionary samplers), on ``storage`` (``journal``: a file in the run folder;
    ``memory``; a journal file name; or a database URL), as worker number ``worker`` of
    those sharing it, under ``study_name`` (None: ``<study>/<run>``); ``chunk`` designs per
    compiled call."""

    name: ClassVar[str] = "optuna"
    sampler: str
    n_trials: int
    batch: int
    population: int
    seed: int
    storage: str | None
    worker: int
    study_name: str | None
    chunk: int

    def __post_init__(self):
        for key in ("n_trials", "batch", "population", "chunk"):
            object.__setattr__(self, key, count(f"search.{key}", getattr(self, key)))
        for key in ("seed", "worker"):
            object.__setattr__(self, key, count(f"search.{key}", getattr(self, key), minimum=0))
        make_sampler(self.sampler, self.seed, self.population)  # a bad name: one line, now

    def run(self, problem: Problem, progress: Progress) -> Found:
        evaluator = Evaluator(problem.stack, problem.model, problem.space, chunk=self.chunk)
        result, _ = optuna_search(
            evaluator, problem.objectives, problem.constraints,
            n_trials=self.n_trials, batch=self.batch, sampler=self.sampler,
            population=self.population, seed=self.seed,
            storage=_storage(self.storage, problem.out),
            study_name=str(self.study_name or problem.name), worker=self.worker,
            progress=progress,
        )  # fmt: skip
        return Found(result)


def _storage(storage, out: Path) -> str | None:
    """``journal`` (default): a journal file in the run folder; ``memory``/null: none; a database
    URL (``postgresql://user:pw@host/db``); or a journal file name, kept in the run folder so that
    nothing is written outside the results directory."""
    if storage in (None, "memory", "none"):
        return None
    if storage == "journal":
        return str(out / "optuna.journal")
    storage = str(storage)
    if "://" in storage:
        return storage
    name = Path(storage)
    if name.is_absolute() or ".." in name.parts:
        raise ValueError(
            f"search.storage={storage!r}: a journal file is kept in the run folder; give a plain "
            "file name (e.g. shared.journal), 'journal', 'memory' or a database URL"
        )
    return str(out / name)
