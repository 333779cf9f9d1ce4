"""Optuna 5 multi-objective search: ask a batch, evaluate it in one vectorized call, tell.

Optuna's define-by-run trials fit the space's union of products: a trial first picks the
subspace (its system), then only that subspace's fields, so LPX chip counts are never sampled
for a GPU rack. Fields shared by every subspace keep one parameter name (NSGA-II crosses them
over between systems); a subspace's own fields are named ``<system>/<field>``.

The model's feasibility and every constraint go to ``trial.set_constraint`` (Optuna 5; the
``constraints_func`` sampler argument is deprecated), as relative violations (<= 0 = met).

Persistence is Optuna's (``storage_mode``: ``direct`` samples on the shared storage; ``batch``
samples in memory and appends every told batch in bulk — the default for journal files, 20x
faster there): any storage URL (``postgresql://...`` for many workers on many
machines) or a journal file. A study of the same name in the same storage resumes: trials
already told count towards ``n_trials``, and the front is rebuilt from *all* of the study's
trials by re-evaluating their parameters (cheap, vectorized), so an interrupted run loses at
most the batch in flight and results never depend on which process told which trial.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna

from ..progress import Progress
from .evaluate import Evaluator
from .exhaustive import SearchResult
from .objectives import Constraint, Objective, meets, violations
from .pareto import Front, pareto_mask
from .secrets import redact

SAMPLERS = ("nsga2", "nsga3", "tpe", "random")
COMPLETE = optuna.trial.TrialState.COMPLETE


def make_sampler(name: str, seed: int, population: int = 100) -> optuna.samplers.BaseSampler:
    name = str(name).lower()
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=population, seed=seed)
    if name == "nsga3":
        return optuna.samplers.NSGAIIISampler(population_size=population, seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"search.sampler={name!r} is not one of {', '.join(SAMPLERS)}")


def make_storage(storage: str | None):
    """None: in memory; a ``*.journal``/``*.log`` path: a journal file; else an Optuna URL."""
    if not storage:
        return None
    if "://" in str(storage):
        return str(storage)
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    path = Path(storage)
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


def _open_study(name: str, storage, directions, sampler) -> optuna.Study:
    """The persistent study; a storage that cannot be opened (no driver, server down, wrong
    password) is the user's to fix: one line, with the URL's password masked."""
    try:
        return optuna.create_study(study_name=name, storage=make_storage(storage),
                                   directions=directions, sampler=sampler, load_if_exists=True)  # fmt: skip
    except (ValueError, OSError):
        raise
    except ImportError as e:
        raise ValueError(
            f"search.storage={redact(str(storage))}: the database driver is not installed "
            "(PostgreSQL: pip install 'dse[cluster]', which brings psycopg2-binary)"
        ) from e
    except Exception as e:  # SQLAlchemy/driver errors: connection refused, authentication, ...
        first = redact(str(e).strip().splitlines()[0]) if str(e).strip() else type(e).__name__
        raise ValueError(f"search.storage={redact(str(storage))}: cannot open ({first})") from e


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
                name = field if (field, tuple(choices)) in common else f"{p.name}/{field}"
                entries.append((name, field, tuple(choices)))
        out.append(entries)
    return out


def _suggest(trial, ev: Evaluator, params) -> tuple[int, dict[str, int], dict[str, float]]:
    space = ev.space
    k = 0
    if len(space.products) > 1:
        names = [p.name for p in space.products]
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
    storage_mode: str = "auto",
    progress: Progress | None = None,
) -> tuple[SearchResult, optuna.Study]:
    """Run (or resume) a study until it holds ``n_trials`` complete trials. ``progress``
    (:mod:`dse.progress`) shows a task ``optuna <sampler>`` of ``n_trials`` trials (resumed ones
    count as done) advanced per told batch; the first batch's compilation shows as a phase."""
    callback = None
    if progress is not None and not isinstance(progress, Progress) and callable(progress):
        callback, progress = progress, None  # deprecated: progress(done, n_trials) per batch
    progress = progress if progress is not None else Progress()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    directions = ["maximize" if o.maximize else "minimize" for o in objectives]
    persistent = _open_study(study_name, storage, directions, make_sampler(sampler, seed, population))
    # A journal file appends one record per suggest/constraint/tell (~10 ms per trial, measured
    # 6x the in-memory cost): sample in memory and append each told batch in bulk (add_trials,
    # ~0.5 ms per trial). Database URLs stay direct so workers on many machines cooperate.
    bulk = storage_mode == "batch" or (storage_mode == "auto" and storage and "://" not in str(storage))
    study = persistent
    if bulk:
        study = optuna.create_study(directions=directions,
                                    sampler=make_sampler(sampler, seed, population))  # fmt: skip
        study.add_trials(persistent.get_trials(deepcopy=False, states=(COMPLETE,)))
    params = _params(ev)
    names = ["feasible"] + [c.metric for c in constraints]
    done = len(study.get_trials(deepcopy=False, states=(COMPLETE,)))
    task = progress.task(f"optuna {str(sampler).lower()}", total=n_trials, unit="trials",
                         completed=min(done, n_trials))  # fmt: skip
    with task:
        while done < n_trials:
            trials = [study.ask() for _ in range(min(batch, n_trials - done))]
            picks = [_suggest(t, ev, params) for t in trials]
            metrics = ev.evaluate(_columns(ev, picks), progress=progress)
            viol = violations(metrics, constraints)
            values = np.stack([metrics[o.metric] for o in objectives], axis=1)
            for j, trial in enumerate(trials):
                for name, v in zip(names, viol[j]):
                    trial.set_constraint(name, float(v))
                study.tell(trial, [float(x) for x in values[j]])
            if bulk:
                persistent.add_trials(study.get_trials(deepcopy=False)[-len(trials):])
            done += len(trials)
            task.advance(len(trials))
            if callback is not None:
                callback(done, n_trials)
    return study_result(ev, persistent, objectives, constraints), persistent


def study_result(ev: Evaluator, study, objectives, constraints) -> SearchResult:
    """Every complete trial of ``study`` re-evaluated: all points, the front, the counts."""
    trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
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
        front = Front(maximize, *_concat(front, Front.empty(maximize).merge(values[mine], ids[mine])))
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
