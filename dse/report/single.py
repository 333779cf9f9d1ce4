"""The report of one run: figures, then Markdown and HTML from one context."""

from __future__ import annotations

import logging

from ..search.study import ratio_systems
from .context import build_context
from .figures.breakdown import breakdown_figure
from .figures.frontier import cost_figure, frontier_figure
from .figures.mix import mix_context, mix_figure
from .figures.ratio import cost_ratio_figure
from .figures.sensitivity import sensitivity_figure
from .figures.style import style
from .figures.workload import cache_figure, session_figure, session_time_figure
from .load import RunResults
from .render import figure_entries, render, write_atomic
from .review import FIXED_TRAFFIC, build_review

log = logging.getLogger("dse.report")


def write_run_report(run: RunResults, top: int | None = None, baseline: str | None = None):

    opts = dict(run.config.get("report") or {})
    top = int(top if top is not None else opts.get("top", 5))
    if top < 1:
        raise ValueError(f"top={top}: give the number of configurations to recommend (>= 1)")
    baseline = baseline or opts.get("baseline")
    ratio_to = ratio_systems(opts.get("ratio_to"))
    folder = run.path / "figures"
    with style():  # the report's matplotlib settings, restored afterwards
        return _write_run_report(run, top, baseline, folder, ratio_to)


def _write_run_report(run: RunResults, top: int, baseline: str | None, folder, ratio_to=()):
    from . import ReportFiles

    if run.engine == "milp":
        figures = [f for f in (mix_figure(run, folder),) if f is not None]
        context = mix_context(run, figure_entries(figures, run.path))
        return _write(run, "mix", context, figures, ReportFiles)
    review = build_review(run, top=top, baseline=baseline)
    workload = run.summary.get("workload")
    figures = []
    if len(review.frontier):
        figures += [frontier_figure(review, folder), cost_figure(review, folder)]
        if ratio_to:
            figures.append(cost_ratio_figure(review, folder, list(ratio_to)))
        figures.append(breakdown_figure(review, folder))
        figures.append(sensitivity_figure(review, folder))
        if workload not in FIXED_TRAFFIC:
            figures.append(cache_figure(review, run, folder))
            figures.append(session_time_figure(review, folder))
    if workload not in FIXED_TRAFFIC:
        figures.append(session_figure(run, workload, folder))
    figures = [f for f in figures if f is not None]
    context = build_context(review, figure_entries(figures, run.path), [])
    return _write(run, "report", context, figures, ReportFiles)


def _write(run: RunResults, template: str, context: dict, figures, ReportFiles):
    md, html = run.path / "report.md", run.path / "report.html"
    produced = [md, html, *(p for f in figures for p in (f.png, f.svg))]
    listed = list(run.summary.get("files") or [])
    context["files"] = listed + [p.relative_to(run.path).as_posix() for p in produced]
    write_atomic(render(f"{template}.md.j2", context), md)
    write_atomic(render(f"{template}.html.j2", context), html)
    log.debug("report: %s, %s and %d figures", md, html.name, len(figures))
    return ReportFiles(md, html, tuple(p for f in figures for p in (f.png, f.svg)))
