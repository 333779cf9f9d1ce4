"""A study's results folder read back as one value: what ``dse search`` wrote, nothing recomputed.

The report reads the run folder (``config.yaml``, ``summary.json`` and the parquet tables of
:mod:`dse.search.results`), so ``dse report DIR`` and the report written at the end of
``dse search`` are the same function of the same files. Reference material comes from the
current checkout instead (hardware specs and their sources, the calibration's held-out errors
and provenance, the study README's question): an old run reported after a recalibration shows
today's error bars, and the report names the calibration it used.

A multirun sweep folder (``multirun-<run>/job<N>/``, :file:`conf/dse.yaml`) is a list of runs;
each job's ``.hydra/overrides.yaml`` says what it changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..files import load_yaml

TABLES = ("points", "frontier", "best", "sensitivities", "refined", "whatif", "mix", "session",
          "cache_curve")


@dataclass(frozen=True)
class RunResults:
    path: Path
    config: dict
    summary: dict
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    overrides: tuple[str, ...] = ()  # the job's command-line overrides (multirun jobs)

    def table(self, name: str) -> pd.DataFrame:
        """The named table, or an empty frame when the run did not write it."""
        return self.tables.get(name, pd.DataFrame())

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def engine(self) -> str:
        return str(self.summary.get("engine", "exhaustive"))

    @property
    def title(self) -> str:
        return (
            self.config.get("title") or self.summary.get("title") or str(self.summary.get("study"))
        )


def is_run(path: Path) -> bool:
    return (Path(path) / "summary.json").is_file()


def sweep_jobs(path: Path) -> list[Path]:
    """The finished job folders of a multirun sweep, in job order (job2 before job10)."""
    jobs = [p for p in Path(path).iterdir() if p.is_dir() and is_run(p)]
    return sorted(jobs, key=lambda p: (len(p.name), p.name))


def load_run(path: str | Path) -> RunResults:
    """Read a run folder; a folder without ``summary.json`` is not a finished run."""
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path}: no such folder; pass a results folder written by dse search")
    if not is_run(path):
        hint = "it is a multirun sweep folder" if sweep_jobs(path) else "no summary.json inside"
        raise ValueError(
            f"{path}: not a finished study run ({hint}); pass results/<study>/<run>/ or a sweep's "
            "multirun-<run>/ folder"
        )
    summary = json.loads((path / "summary.json").read_text())
    cfg_file = path / "config.yaml"
    config = load_yaml(cfg_file.read_text()) if cfg_file.is_file() else {}
    tables = {}
    for name in TABLES:
        f = path / f"{name}.parquet"
        if f.is_file():
            table = pd.read_parquet(f)
            if "point" not in table and "trial" in table:  # Optuna: the trial number names a design
                table.insert(0, "point", table["trial"])
            tables[name] = table
    over = path / ".hydra" / "overrides.yaml"
    overrides = tuple(load_yaml(over.read_text()) or ()) if over.is_file() else ()
    return RunResults(path, config or {}, summary, tables, overrides)


def load_sweep(path: str | Path) -> list[RunResults]:
    path = Path(path)
    jobs = sweep_jobs(path) if path.is_dir() else []
    if not jobs:
        raise ValueError(
            f"{path}: no finished jobs (job*/summary.json) inside; pass a multirun-<run>/ folder"
        )
    return [load_run(p) for p in jobs]
