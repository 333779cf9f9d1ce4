"""One study, end to end: resolved config → Stack → :class:`~.engine.Problem` → engine →
``results/<study>/<run>/``.

The single entry point behind ``dse search`` (Hydra app), the dse sweeper and the Python API::

    import dse.search
    outcome = dse.search.run("seed_rubin_lpx", engine="optuna")   # as search=optuna
    outcome = dse.search.run("seed_rubin_lpx", ["search.n_trials=4000"], engine="optuna")
    outcome.frontier  # a DataFrame

Engines (:mod:`.engine`; ``_target_`` in ``conf/search/*.yaml``, which hold their defaults):
``exhaustive`` (every point, streaming Pareto filter, checkpointed per chunk), ``optuna``
(batched ask/tell, persistent storage, resumable), ``milp`` (cvxpy/HiGHS hardware mix for a
demand), ``gradient`` (a Pareto engine, then sensitivities and projected-gradient refinement at
its frontier). The study builds the problem and writes what the engine found; the report is the
caller's (``dse.report.write_report(outcome.out_dir)``).
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import threading
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
from ..values import count, number
from .engine import Engine, Found, Problem, Unfinished, engine_config, engine_from_config
from .objectives import Objective, parse_constraints, parse_objectives
from .results import (
    default_reference,
    front_hypervolume,
    summary_json,
    write_table,
    write_text,
)
from .secrets import redact_tree
from .space import Space

log = logging.getLogger("dse.search")


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
    sessions = count("sessions", setting(cfg, "sessions"))
    if traffic:
        profile = traffic_profile(dict(traffic))
        return Stack(profile, cost=cost_name, cost_overrides=cost_over), "fixed"
    workload = choices.get("workload") or "agentic_coding"
    return Stack(workload, cost=cost_name, cost_overrides=cost_over, sessions=sessions), workload


TRAFFIC_KEYS = ("isl", "osl", "prefix", "dataset", "isl_cv", "osl_cv", "length_corr")


def traffic_profile(traffic: dict):
    """The profile of a study's fixed-length ``traffic:`` (``conf/dse.yaml``). A ``dataset``
    (``conf/dataset/``) gives the lengths' spread, and ``isl``/``osl`` where they are left out;
    keys given beside it win."""
    from ..catalog import load_catalog
    from ..workload.fixed import fixed_length_profile

    for key in traffic:
        if key not in TRAFFIC_KEYS:
            close = difflib.get_close_matches(str(key), TRAFFIC_KEYS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"traffic.{key} is not a traffic setting{hint} (known: {', '.join(TRAFFIC_KEYS)})"
            )
    name = traffic.get("dataset")
    dataset = load_catalog().dataset(str(name)) if name else None
    values = {}
    for key in ("isl", "osl", "isl_cv", "osl_cv", "length_corr"):
        v = traffic.get(key)
        if v is None and dataset is not None:
            v = getattr(dataset, key)
        if v is None and key in ("isl", "osl"):
            raise ValueError(
                f"traffic.{key} is missing; give traffic.{key} or a traffic.dataset from "
                "conf/dataset/"
            )
        values[key] = number(f"traffic.{key}", v if v is not None else 0.0,
                             minimum=-1.0 if key == "length_corr" else 0.0)  # fmt: skip
    prefix = number("traffic.prefix", traffic.get("prefix") or 0.0)
    return fixed_length_profile(
        values["isl"], values["osl"], prefix, isl_cv=values["isl_cv"],
        osl_cv=values["osl_cv"], length_corr=values["length_corr"],
    )  # fmt: skip


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
            for entry in own if isinstance(own, (list, tuple)) else (own,):
                for key in pin:
                    (entry or {}).pop(key, None)
    space.pop("title", None)
    return Space.from_mapping(space)


def run_study(
    cfg,
    choices: dict,
    out_dir: Path | str,
    progress: str | Progress = "none",
    engine: Engine | None = None,
) -> StudyOutcome:
    """Run the study described by a resolved config; write and return its results (the
    design-review report is the caller's: ``dse.report.write_report(out_dir)`` reads the files
    written here). ``progress``: a :mod:`dse.progress` mode (``auto``, ``bars``, ``log``,
    ``none``), closed on return, or a Progress object, which the caller closes. ``engine``:
    replaces the config's ``search`` (recorded in the run's ``config.yaml`` as its
    ``_target_`` mapping, so the run folder says what ran)."""
    if not isinstance(progress, str):
        return _run_study(cfg, choices, Path(out_dir), progress, engine)
    progress = make_progress(progress)
    try:
        return _run_study(cfg, choices, Path(out_dir), progress, engine)
    finally:
        progress.close()


def _run_study(
    cfg, choices: dict, out: Path, progress: Progress, engine: Engine | None
) -> StudyOutcome:
    t0 = time.perf_counter()
    cfg = _plain(cfg)
    if engine is not None:
        cfg["search"] = engine_config(engine)
    _check_report_options(cfg)  # checked before hours of search, not after
    engine = engine_from_config(cfg.get("search") or {})
    out.mkdir(parents=True, exist_ok=True)
    write_text(yaml.safe_dump(redact_tree(cfg), sort_keys=False), out / "config.yaml")
    model = choices.get("model") or cfg.get("model_name")
    stack, workload = _stack(cfg, choices)
    summary = {
        "study": choices.get("study"), "model": model, "workload": workload,
        "hardware": choices.get("hardware"), "engine": engine.name, "title": cfg.get("title"),
    }  # fmt: skip
    problem = Problem(stack, model, out, name=f"{summary['study']}/{out.name}")
    if engine.pareto:
        problem = dataclasses.replace(
            problem, space=_space(cfg, choices, stack),
            objectives=parse_objectives(cfg.get("objectives")),
            constraints=parse_constraints(cfg.get("constraints")),
            rank=_rank_by(cfg),
            best_where=parse_constraints(cfg.get("best_where"), "best_where"),
            shown=report_top(cfg),
            fingerprint=_fingerprint(cfg),
        )  # fmt: skip
        summary["space_size"] = problem.space.size
    _start_in_background(engine.ahead(problem))
    try:
        found = engine.run(problem, progress)
    except Unfinished as unfinished:  # keep what was found, then report what failed
        _write(cfg, problem, unfinished.found, summary, t0)
        raise unfinished.error from None
    return _write(cfg, problem, found, summary, t0)


def _start_in_background(jobs) -> None:
    """Run ``jobs`` (an engine's ``ahead``: compiling programs it will call later) in daemon
    threads while the search runs: XLA compiles without holding the GIL, so on a cold JAX
    cache the gradient program's ~75 s compile overlaps the sweep's instead of following it.
    A job's error is dropped: the engine's own call repeats the work and reports it where it
    belongs. Daemons, so a run that fails earlier exits without waiting for XLA."""

    def quietly(job):
        try:
            job()
        except BaseException:  # noqa: BLE001 -- reported by the engine's own call
            pass

    for job in jobs:
        threading.Thread(target=quietly, args=(job,), name="dse-ahead", daemon=True).start()


def _write(cfg: dict, problem: Problem, found: Found, summary: dict, t0: float) -> StudyOutcome:
    """What the engine found, as the run folder's tables and ``summary.json``."""
    out, result, written = problem.out, found.result, []
    frontier = pd.DataFrame()
    best = found.answer if found.answer is not None else pd.DataFrame()
    if result is not None:
        frontier = result.front_table if result.front_table is not None else frontier
        best = problem.best(frontier)
        if result.points is not None:
            written += write_table(result.points, out, "points")
        written += write_table(frontier, out, "frontier") + write_table(best, out, "best")
    for name, table in found.tables.items():
        written += write_table(table, out, name)
    summary.update(found.summary)
    if result is not None:
        files, workload_cache = _write_workload(cfg, problem.stack, problem.model, frontier, out)
        written += files
        ref = default_reference(problem.objectives, frontier)
        summary.update(
            evaluated=result.evaluated, feasible=result.feasible, frontier=len(frontier),
            objectives=[o.__dict__ for o in problem.objectives],
            constraints=[c.__dict__ for c in problem.constraints],
            hypervolume=front_hypervolume(frontier, problem.objectives, ref),
            hypervolume_reference=ref,
        )  # fmt: skip
        if workload_cache:
            summary["workload_cache"] = workload_cache
    summary.update(seconds=round(time.perf_counter() - t0, 2),
                   files=written + ["config.yaml", "summary.json"])  # fmt: skip
    summary_json(out / "summary.json", summary)
    points = result.points if result is not None else None
    return StudyOutcome(out, summary, frontier, best, points, {**found.tables, **found.extra})


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
    curve, mean_input = cache_curve(params, count("sessions", setting(cfg, "sessions")))
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
    report_top(cfg)
    baseline = opts.get("baseline")
    space = cfg.get("space") or {}
    systems = [
        str(x) for x in (space.get("systems") or (space.get("choices") or {}).get("system") or [])
    ]
    for name in ratio_systems(opts.get("ratio_to")):
        if systems and name not in systems:
            near = difflib.get_close_matches(name, systems, n=1)
            raise ValueError(
                f"report.ratio_to: {name!r} is not a system of this study; "
                f"{f'did you mean {near[0]}? ' if near else ''}choose among {', '.join(systems)}"
            )
    if baseline and systems and str(baseline) not in systems:
        near = difflib.get_close_matches(str(baseline), systems, n=1)
        raise ValueError(
            f"report.baseline={baseline!r} is not a system of this study; "
            f"{f'did you mean {near[0]}? ' if near else ''}choose one of {', '.join(systems)}"
        )


def setting(cfg: dict, key: str, where: str = ""):
    """A study-level setting; ``conf/dse.yaml`` gives each one its value (the one place its
    default lives), so a missing one is a config that did not come through Hydra."""
    section = dict(cfg.get(where) or {}) if where else cfg
    name = f"{where}.{key}" if where else key
    if section.get(key) is None:
        raise ValueError(f"{name}: not set; conf/dse.yaml sets it, give {name}=VALUE")
    return section[key]


def report_top(cfg) -> int:
    """How many recommended configurations the report shows (``report.top``), checked."""
    return count("report.top", setting(cfg, "top", "report"))


def ratio_systems(value) -> list[str]:
    """``report.ratio_to``: the reference systems of the report's cost-advantage figure (a name
    or a list of names; null: no figure)."""
    if value is None:
        return []
    names = [value] if isinstance(value, str) else list(value)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"report.ratio_to={value!r}: give a system name or a list of them "
                         "(e.g. [gb200_nvl72, gb300_nvl72]), or null")  # fmt: skip
    return names


def _rank_by(cfg: dict) -> Objective:
    (rank,) = parse_objectives([setting(cfg, "rank_by")], "rank_by")
    return rank


# Settings that do not change which points a sweep finds: where and how it runs, what it
# prints, and the engine's own settings (chunk size, checkpoint period; gradients come after).
_NOT_RESULTS = ("run", "ui", "report", "results_dir", "hydra", "search")


def _fingerprint(cfg: dict) -> str:
    """A hash of every setting that changes an exhaustive sweep's results, and of the shipped
    calibration: a checkpoint is resumed only by the configuration that wrote it."""
    import hashlib
    import json

    from ..calibration.params import default_calibration_path

    kept = {k: v for k, v in cfg.items() if k not in _NOT_RESULTS}
    h = hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode())
    cal = Path(default_calibration_path())
    if cal.is_file():
        h.update(cal.read_bytes())
    return h.hexdigest()[:16]


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


def run(
    study: str | None = None,
    overrides=(),
    *,
    engine: str | Engine | None = None,
    out_dir: str | Path | None = None,
    progress: str = "none",
) -> StudyOutcome:
    """Python API: run a study as ``dse search study=NAME overrides...`` would.

    ``engine``: the study's own (None), a ``conf/search`` name (``"optuna"``: as
    ``search=optuna``, its settings from that file and ``overrides``), or an engine object
    (:class:`~.exhaustive.Exhaustive`, :class:`~.optuna_search.Optuna`, ...). ``progress``:
    ``none``, ``auto``, ``bars`` or ``log``. Returns the outcome; the report is
    ``dse.report.write_report(outcome.out_dir)``."""
    from omegaconf import OmegaConf

    if isinstance(engine, str) and not (conf_dir() / "search" / f"{engine}.yaml").is_file():
        known = sorted(p.stem for p in (conf_dir() / "search").glob("*.yaml"))
        raise ValueError(
            f"engine={engine!r}: no conf/search/{engine}.yaml; use one of {', '.join(known)}"
        )
    chosen = [f"search={engine}"] if isinstance(engine, str) else []
    cfg, choices = compose(study, [*chosen, *overrides])
    out = out_dir or Path(cfg.results_dir) / choices["study"] / str(cfg.run)
    cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    given = engine if isinstance(engine, Engine) else None
    return run_study(cfg, choices, out, progress=progress, engine=given)
