"""One study, end to end: resolved config → Stack → space → engine → ``results/<study>/<run>/``.

The single entry point behind ``dse search`` (Hydra app), the dse sweeper and the Python API::

    from dse.search import search
    outcome = search("seed_rubin_lpx", ["search=optuna", "search.n_trials=4000"])
    outcome.frontier  # a DataFrame

Engines (``search.engine``, ``conf/search/``): ``exhaustive`` (every point, streaming Pareto
filter, checkpointed per chunk), ``optuna`` (batched ask/tell, persistent storage, resumable),
``milp`` (cvxpy/HiGHS hardware mix for a demand). Any Pareto engine may add ``refine`` (projected
gradient from the best discrete points) and ``sensitivities`` (Jacobians at those points).
"""

from __future__ import annotations

import difflib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..files import conf_dir
from ..progress import Progress, make_progress
from ..stack import Stack
from ..stack.config import load_group
from .checkpoint import load_checkpoint, save_checkpoint
from .evaluate import Evaluator
from .exhaustive import KEEP_ALL_POINTS, SearchResult, exhaustive_search
from .objectives import Objective, meets, parse_constraints, parse_objectives
from .optuna_search import optuna_search
from .results import (
    best_configs,
    default_reference,
    front_hypervolume,
    summary_json,
    top_configs,
    write_table,
    write_text,
)
from .secrets import redact_tree
from .space import Space

log = logging.getLogger("dse.search")
ENGINES = ("exhaustive", "optuna", "milp")


@dataclass(frozen=True)
class StudyOutcome:
    out_dir: Path
    summary: dict
    frontier: pd.DataFrame
    best: pd.DataFrame
    points: pd.DataFrame | None = None
    extra: dict = field(default_factory=dict)  # engine-specific tables (mix, refine, ...)


def _plain(cfg) -> dict:
    from omegaconf import DictConfig, OmegaConf

    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)


def _stack(cfg: dict, choices: dict) -> tuple[Stack, str]:
    """The Stack for the study; group contents edited on the command line are applied (cost)
    or refused (model/workload: edit a copy of the file), never silently dropped."""
    cost_name = choices.get("cost") or "default"
    cost_file = load_group("cost", cost_name)
    cost_over = {k: v for k, v in (cfg.get("cost") or {}).items()
                 if k not in ("title", "sources", "notes") and cost_file.get(k) != v}  # fmt: skip
    traffic = cfg.get("traffic")
    for group in ("workload", "model"):
        if traffic and group == "workload":
            continue
        name = choices.get(group)
        if name and not _same(cfg.get(group), load_group(group, name)):
            raise ValueError(
                f"{group}: fields of conf/{group}/{name}.yaml were overridden on the command line; "
                f"copy the file to a new name, edit it and pass {group}=NEW_NAME"
            )
    sessions = whole(cfg, "sessions", 64)
    if traffic:
        from ..workload.fixed import fixed_length_profile

        t = dict(traffic)
        profile = fixed_length_profile(float(t["isl"]), float(t["osl"]), float(t.get("prefix", 0)))
        return Stack(profile, cost=cost_name, cost_overrides=cost_over), "fixed"
    workload = choices.get("workload") or "agentic_coding"
    return Stack(workload, cost=cost_name, cost_overrides=cost_over, sessions=sessions), workload


def _same(a, b) -> bool:
    """Equal as config values (OmegaConf reads ``32e9`` as a float where PyYAML keeps a str)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if a == b:
        return True
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


def _space(cfg: dict, choices: dict, stack: Stack) -> Space:
    """The space config, with ``hardware=NAME`` pinning the GPU pools (and host tier) to it."""
    space = dict(cfg.get("space") or {})
    hardware = choices.get("hardware")
    if hardware:
        entry = stack.catalog.accelerator(hardware)
        pin = {"decode_hw": [entry.name], "prefill_hw": [entry.name]}
        if entry.host:
            pin["host"] = [entry.host]
        space["choices"] = {**(space.get("choices") or {}), **pin}
        for own in (
            (space.get("systems") or {}).values() if isinstance(space.get("systems"), dict) else ()
        ):
            for key in pin:
                (own or {}).pop(key, None)
    space.pop("title", None)
    return Space.from_mapping(space)


def run_study(
    cfg, choices: dict, out_dir: Path | str, progress: str | Progress = "none"
) -> StudyOutcome:
    """Run the study described by a resolved config; write and return its results (the
    design-review report is the caller's: ``dse.report.write_report(out_dir)`` reads the files
    written here). ``progress``: a :mod:`dse.progress` mode (``auto``, ``bars``, ``log``,
    ``none``), closed on return, or a Progress object, which the caller closes."""
    if not isinstance(progress, str):
        return _run_study(cfg, choices, Path(out_dir), progress)
    progress = make_progress(progress)
    try:
        return _run_study(cfg, choices, Path(out_dir), progress)
    finally:
        progress.close()


def _run_study(cfg, choices: dict, out: Path, progress: Progress) -> StudyOutcome:
    t0 = time.perf_counter()
    cfg = _plain(cfg)
    _check_report_options(cfg)  # checked before hours of search, not after
    out.mkdir(parents=True, exist_ok=True)
    write_text(yaml.safe_dump(redact_tree(cfg), sort_keys=False), out / "config.yaml")
    s = dict(cfg.get("search") or {})
    engine = str(s.get("engine", "exhaustive"))
    if engine not in ENGINES:
        raise ValueError(f"search.engine={engine!r} is not one of {', '.join(ENGINES)}")
    model = choices.get("model") or cfg.get("model_name")
    stack, workload = _stack(cfg, choices)
    summary = {
        "study": choices.get("study"), "model": model, "workload": workload,
        "hardware": choices.get("hardware"), "engine": engine, "title": cfg.get("title"),
    }  # fmt: skip
    if engine == "milp":
        return _run_milp(cfg, s, stack, model, out, summary, t0, progress)

    objectives = parse_objectives(cfg.get("objectives"))
    constraints = parse_constraints(cfg.get("constraints"))
    where = parse_constraints(cfg.get("best_where"), "best_where")  # checked before the search
    rank = Objective(*_rank_by(cfg))
    space = _space(cfg, choices, stack)
    ev = Evaluator(stack, model, space, chunk=whole(s, "chunk", 1 << 13, "search"))
    summary["space_size"] = space.size
    warmup = None
    if s.get("sensitivities"):  # compile the Jacobian while the search runs (2 cores: overlap)
        from .gradients import compile_in_background

        top = whole(dict(s.get("refine") or {}), "top", 8, "search.refine")
        warmup = compile_in_background(stack, top)
    if engine == "exhaustive":
        result = _run_exhaustive(
            stack, model, space, objectives, constraints, ev, s, out, progress, _fingerprint(cfg)
        )
    else:
        result, _ = optuna_search(
            ev, objectives, constraints,
            n_trials=whole(s, "n_trials", 2000, "search"), batch=whole(s, "batch", 256, "search"),
            sampler=str(s.get("sampler", "nsga2")), population=whole(s, "population", 100, "search"),
            seed=whole(s, "seed", 0, "search", low=0), storage=_storage(s.get("storage"), out),
            study_name=str(s.get("study_name") or f"{summary['study']}/{out.name}"),
            worker=whole(s, "worker", 0, "search", low=0),
            progress=progress,
        )  # fmt: skip
    frontier = result.front_table if result.front_table is not None else pd.DataFrame()
    chosen = (
        frontier[meets({c: frontier[c] for c in frontier}, where)]
        if where and len(frontier)
        else frontier
    )
    best = best_configs(chosen, objectives, rank)
    written = []
    if result.points is not None:
        written += write_table(result.points, out, "points")
    written += write_table(frontier, out, "frontier") + write_table(best, out, "best")
    extra = {}
    if s.get("refine") or s.get("sensitivities"):
        with progress.phase("gradients (compiled once, then cached)"):
            if warmup is not None:
                warmup.wait()
            extra = _gradients(cfg, stack, ev, frontier, best, objectives, constraints, s)
        for name, table in extra.items():
            written += write_table(table, out, name)
    files, workload_cache = _write_workload(cfg, stack, model, frontier, out)
    written += files
    ref = default_reference(objectives, frontier)
    summary.update(
        evaluated=result.evaluated, feasible=result.feasible, frontier=len(frontier),
        objectives=[o.__dict__ for o in objectives], constraints=[c.__dict__ for c in constraints],
        hypervolume=front_hypervolume(frontier, objectives, ref), hypervolume_reference=ref,
        seconds=round(time.perf_counter() - t0, 2), files=written + ["config.yaml", "summary.json"],
    )  # fmt: skip
    if workload_cache:
        summary["workload_cache"] = workload_cache
    summary_json(out / "summary.json", summary)
    return StudyOutcome(out, summary, frontier, best, result.points, extra)


def _write_workload(cfg: dict, stack: Stack, model: str, frontier, out: Path):
    """The workload's session and hit-rate curve (``dse.workload.record``) as tables, and the
    KV bytes per cached token of the study's model at the population's mean prompt, per KV
    precision on the frontier, in ``summary.json``: what the report's workload figures draw.
    Fixed-length traffic has neither a session nor a reuse curve."""
    if cfg.get("traffic") or not isinstance(cfg.get("workload"), dict):
        return [], None
    from ..model.tiers import kv_bytes_per_token
    from ..workload.params import SessionParams
    from ..workload.record import cache_curve, session_table
    from ..workload.session import DEFAULT_SEED

    params = SessionParams.from_dict(cfg["workload"])
    curve, mean_input = cache_curve(params, whole(cfg, "sessions", 64))
    arch = stack.catalog.model(model).arch
    bits = sorted({4.0, 8.0, 16.0} | set(frontier.get("kv_bits", pd.Series(dtype=float))))
    kv = {f"{b:g}": float(kv_bytes_per_token(arch, np.float64(b), np.float64(mean_input)))
          for b in bits}  # fmt: skip
    files = write_table(session_table(params), out, "session")
    files += write_table(curve, out, "cache_curve")
    return files, {"mean_input_tokens": mean_input, "kv_bytes_per_token": kv,
                   "prompt_cache_ttl_s": float(params.prompt_cache_ttl_s),
                   "session_seed": DEFAULT_SEED}  # fmt: skip


def _check_report_options(cfg: dict) -> None:
    opts = dict(cfg.get("report") or {})
    whole(opts, "top", 5, "report")
    baseline = opts.get("baseline")
    space = cfg.get("space") or {}
    systems = [
        str(x) for x in (space.get("systems") or (space.get("choices") or {}).get("system") or [])
    ]
    if baseline and systems and str(baseline) not in systems:
        near = difflib.get_close_matches(str(baseline), systems, n=1)
        raise ValueError(
            f"report.baseline={baseline!r} is not a system of this study; "
            f"{f'did you mean {near[0]}? ' if near else ''}choose one of {', '.join(systems)}"
        )


def whole(section: dict, key: str, default: int, where: str = "", low: int = 1) -> int:
    """An integer setting, checked where it enters: ``search.n_trials=abc`` or ``=0`` is one
    clear line, not a traceback or a silent default."""
    value = section.get(key, default)
    name = f"{where}.{key}" if where else key
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{name}={value!r}: give a whole number >= {low}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{name}={value!r}: give a whole number >= {low}") from None
    if not number.is_integer() or number < low:
        raise ValueError(f"{name}={value!r}: give a whole number >= {low}")
    return int(number)


def _rank_by(cfg: dict) -> tuple[str, bool]:
    rank = cfg.get("rank_by") or "min:usd_per_mtok"
    (o,) = parse_objectives([rank], "rank_by")
    return o.metric, o.maximize


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


# Settings that do not change what a sweep computes (where and how it runs, what it prints).
_NOT_RESULTS = ("run", "ui", "report", "results_dir", "hydra")
_NOT_RESULTS_SEARCH = ("checkpoint_every", "chunk", "resume", "keep_points", "sensitivities",
                       "refine")  # fmt: skip


def _fingerprint(cfg: dict) -> str:
    """A hash of every setting that changes an exhaustive sweep's results, and of the shipped
    calibration: a checkpoint is resumed only by the configuration that wrote it."""
    import hashlib
    import json

    from ..calibration.params import default_calibration_path

    kept = {k: v for k, v in cfg.items() if k not in _NOT_RESULTS}
    kept["search"] = {
        k: v for k, v in dict(cfg.get("search") or {}).items() if k not in _NOT_RESULTS_SEARCH
    }
    h = hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode())
    cal = Path(default_calibration_path())
    if cal.is_file():
        h.update(cal.read_bytes())
    return h.hexdigest()[:16]


def _run_exhaustive(
    stack, model, space, objectives, constraints, ev, s, out, progress, fingerprint: str = ""
) -> SearchResult:
    """Exhaustive sweep, resumed from ``checkpoint.npz`` in the run folder when present."""
    maximize = tuple(o.maximize for o in objectives)
    keep = s.get("keep_points")
    keep = space.size <= KEEP_ALL_POINTS if keep is None else bool(keep)
    # Small spaces (every point tabulated) simply rerun; large ones resume from the checkpoint.
    resume = s.get("resume", True) and not keep
    state = (
        load_checkpoint(out / "checkpoint.npz", space.size, maximize, fingerprint)
        if resume
        else None
    )
    start, front, counts = state or (0, None, (0, 0))
    if start:
        log.info("exhaustive: resuming at point %d of %d", start, space.size)
    every = whole(s, "checkpoint_every", 16, "search")
    tick = {"n": 0}

    def checkpoint(next_start, front, counts):
        tick["n"] += 1
        if tick["n"] % every == 0 or next_start >= space.size:
            save_checkpoint(
                out / "checkpoint.npz", next_start, front, counts, space.size, fingerprint
            )

    return exhaustive_search(
        stack, model, space, objectives, constraints, keep_points=keep,
        start=start, front=front, counts=counts, checkpoint=checkpoint, evaluator=ev,
        progress=progress,
    )  # fmt: skip


def _gradients(
    cfg, stack, ev, frontier, best, objectives, constraints, s
) -> dict[str, pd.DataFrame]:
    """Sensitivities and/or projected-gradient refinement at up to ``refine.top`` frontier
    points: the best configurations first (the report charts their sensitivities), then points
    spread along the first objective."""
    from ..model.system_design import SYSTEM_FIELDS
    from .gradients import refine, sensitivities

    if frontier.empty:
        return {}
    r = dict(s.get("refine") or {})
    n = min(whole(r, "top", 8, "search.refine"), len(frontier))
    key = "point" if "point" in frontier else "trial"  # exhaustive point id / Optuna trial number
    spread = frontier.sort_values(objectives[0].metric, ascending=not objectives[0].maximize)
    spread = spread.iloc[np.linspace(0, len(spread) - 1, n).astype(int)]
    report = dict(cfg.get("report") or {})
    recommended, _ = top_configs(frontier, Objective(*_rank_by(cfg)),
                                 parse_constraints(cfg.get("best_where"), "best_where"), int(report.get("top", 5)))  # fmt: skip
    order = [*recommended[key], *best.get(key, []), *spread[key]]
    pick = frontier.set_index(key, drop=False).loc[list(dict.fromkeys(order))[:n]]
    model = float(stack.model_names.index(stack.catalog.model(ev.model).id))
    rows = [{**{f: float(row[f]) for f in SYSTEM_FIELDS if f != "model"}, "model": model}
            for _, row in pick.iterrows()]  # fmt: skip
    tables = {}
    if s.get("sensitivities"):
        table = sensitivities(stack, rows)
        table.insert(1, "point", pick[key].to_numpy()[table["design"].to_numpy()])
        tables["sensitivities"] = table
    if r:
        cons = {c.metric: (c.low, c.high) for c in constraints}
        res = refine(stack, rows, objective=r.get("objective", "tok_s_per_unit"),
                     constraints=cons, steps=whole(r, "steps", 30, "search.refine"))  # fmt: skip
        table = res.metrics.copy()
        for f in res.fields:
            table[f"start_{f}"] = [row[f] for row in res.starts]
            table[f] = [row[f] for row in res.refined]
        table["objective_before"], table["objective_after"] = (
            res.objective_before,
            res.objective_after,
        )
        table["improved"], table["constraints_met"] = res.improved, res.constraints_met
        tables["refined"] = table
    return tables


def _run_milp(cfg, s, stack, model, out, summary, t0, progress) -> StudyOutcome:
    from .mix_rates import hardware_mix

    opts = {k: v for k, v in s.items() if k not in ("engine", "demand_sessions_s")}
    if "demand_sessions_s" not in s:
        raise ValueError("search.demand_sessions_s: give the demand (agent sessions per second)")
    result = hardware_mix(stack, model, float(s["demand_sessions_s"]), progress=progress, **opts)
    table = result.to_frame()
    written = write_table(table, out, "mix")
    summary.update(result.summary())
    summary.update(seconds=round(time.perf_counter() - t0, 2), files=written + ["summary.json"])
    summary_json(out / "summary.json", summary)
    mix = {"mix": result}
    return StudyOutcome(out, summary, pd.DataFrame(), table, None, mix)


def compose(study: str | None = None, overrides=()) -> tuple[object, dict]:
    """The resolved config and group choices for ``study`` + overrides (Hydra compose API)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    overrides = list(overrides) + ([f"study={study}"] if study else [])
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(conf_dir().resolve()), version_base="1.3"):
        cfg = hydra_compose("dse", overrides=overrides, return_hydra_config=True)
    choices = dict(cfg.hydra.runtime.choices)
    return cfg, choices


def search(study: str | None = None, overrides=(), out_dir: str | Path | None = None,
           progress: str = "none") -> StudyOutcome:  # fmt: skip
    """Python API: run a study as ``dse search study=NAME overrides...`` would (``progress``:
    ``none``, ``auto``, ``bars`` or ``log``)."""
    from omegaconf import OmegaConf

    cfg, choices = compose(study, overrides)
    run = out_dir or Path(cfg.results_dir) / choices["study"] / str(cfg.run)
    cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    return run_study(cfg, choices, run, progress=progress)
