"""Design-review outputs of a study: frontier figures and a best-configuration report.

    from dse.report import write_report
    files = write_report("results/seed_rubin_lpx/20261124-101500")   # report.md, report.html, figures/

``dse report DIR`` runs the same on a finished run or on a multirun sweep folder (one report
comparing its runs); ``dse search`` calls it at the end of every study (``report.enabled``).
Data flows one way: the run folder → :func:`build_review` → figures → context → templates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .load import RunResults, is_run, load_run, load_sweep, sweep_jobs
from .review import Review, build_review


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    html: Path
    figures: tuple[Path, ...]

    @property
    def all(self) -> list[Path]:
        return [self.markdown, self.html, *self.figures]


def write_report(run_dir, top: int = 5, baseline: str | None = None) -> ReportFiles:
    """Figures + ``report.md`` + ``report.html`` for one finished run, written into it."""
    from .single import write_run_report

    return write_run_report(load_run(run_dir), top=top, baseline=baseline)


def write_sweep_report(sweep_dir) -> ReportFiles:
    """One report comparing the runs of a multirun sweep (``multirun-<run>/``)."""
    from .sweep import write_sweep

    return write_sweep(Path(sweep_dir), load_sweep(sweep_dir))


def report(path, top: int = 5, baseline: str | None = None) -> ReportFiles:
    """``dse report PATH``: a run folder gets a run report, a sweep folder a sweep report."""
    path = Path(path)
    if path.is_dir() and not is_run(path) and sweep_jobs(path):
        return write_sweep_report(path)
    return write_report(path, top=top, baseline=baseline)


__all__ = ["ReportFiles", "Review", "RunResults", "build_review", "load_run", "report",
           "write_report", "write_sweep_report"]  # fmt: skip
