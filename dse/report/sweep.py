"""One report comparing the runs of a multirun sweep (``dse search -m ...``): their frontiers
overlaid, and each run's recommended configuration side by side with its delta against the
first run."""

from __future__ import annotations

from pathlib import Path

from ..version import __version__
from .context import fmt
from .figures.frontier import with_derived
from .figures.style import PALETTE, pareto_2d, save, style, subplots
from .load import RunResults
from .render import figure_entries, render, write_atomic
from .review import build_review

COLUMNS = ("system", "software", "tok_s_user", "usd_per_mtok", "tok_s_per_unit", "units", "bound")


def run_labels(runs: list[RunResults]) -> list[str]:
    """What each job changed: its overrides that are not shared by every job (else its name)."""
    common = set.intersection(*(set(r.overrides) for r in runs)) if runs else set()
    return [" ".join(o for o in r.overrides if o not in common) or r.name for r in runs]


def _overlay(path: Path, runs, reviews, labels):
    fig, axes = subplots(1, 2, figsize=(13, 4.8))
    panels = (("usd_per_mtok", "$ per million output tokens", False),
              ("tok_s_per_unit", "output tok/s per GPU", True))  # fmt: skip
    for ax, (y, ylabel, bigger) in zip(axes, panels):
        for k, (label, rev) in enumerate(zip(labels, reviews)):
            cand = with_derived(rev.candidates)
            if cand.empty:
                continue
            stair = cand.iloc[pareto_2d(cand["tok_s_user"].to_numpy(), cand[y].to_numpy(), bigger)]
            ax.step(stair["tok_s_user"], stair[y], where="pre",
                    color=PALETTE[k % 10], lw=1.5, label=f"{k}: {label[:70]}")  # fmt: skip
            for _, row in rev.top.head(1).iterrows():
                ax.plot(row["tok_s_user"], row[y], "*", ms=11, color=PALETTE[k % 10], mec="k")
        ax.set_xlabel("interactivity: output tok/s per user")
        ax.set_ylabel(ylabel)
        ax.set_yscale("log" if not bigger else "linear")
        ax.grid(alpha=0.3)
    handles, names = axes[0].get_legend_handles_labels()
    if handles:  # below the panels: long override lists must not squeeze the axes
        fig.legend(handles, names, loc="outside lower center", fontsize=7, frameon=False)
    fig.suptitle(f"{len(runs)} runs of the sweep: frontiers over all systems (star: each run's #1)")
    caption = (
        "Each line is one run's best reachable value at each interactivity, all systems pooled."
    )
    return save(fig, path / "figures", "sweep_frontiers", "Frontiers of the runs", caption)


def _row(path: Path, run: RunResults, rev, label: str, reference) -> dict:
    """One run in the comparison table (job order kept); its #1 against the first run's #1,
    only when both rank by the same metric."""
    report = run.path / "report.html"
    row = {"label": label, "job": run.name, "engine": run.engine,
           "evaluated": fmt(run.summary.get("evaluated")), "feasible": fmt(run.summary.get("feasible")),
           "best": {c: "–" for c in COLUMNS}, "rank": "", "delta": "–",
           "report": report.relative_to(path).as_posix() if report.is_file() else ""}  # fmt: skip
    if rev is None:  # a MILP job: its cost is its answer
        row.update(rank="usd_per_hour", delta=f"${fmt(run.summary.get('usd_per_hour'))}/h (mix)")
        return row
    row["rank"] = rev.rank.metric
    if len(rev.top):
        best = rev.top.iloc[0]
        row["best"] = {c: fmt(best[c]) for c in COLUMNS}
        if reference is not None and reference.rank.metric == rev.rank.metric:
            ref = float(reference.top.iloc[0][rev.rank.metric])
            if ref:
                row["delta"] = f"{100 * (float(best[rev.rank.metric]) - ref) / abs(ref):+.1f} %"
    return row


def write_sweep(path: Path, runs: list[RunResults]):
    from . import ReportFiles

    pareto_runs = [r for r in runs if r.engine != "milp"]
    reviews = [build_review(r) for r in pareto_runs]
    labels = dict(zip((r.path for r in runs), run_labels(runs)))
    figures = []
    if pareto_runs:
        with style():
            figures = [_overlay(path, pareto_runs, reviews, [labels[r.path] for r in pareto_runs])]
    by_path = dict(zip((r.path for r in pareto_runs), reviews))
    reference = next((rev for rev in reviews if len(rev.top)), None)
    rows = [_row(path, run, by_path.get(run.path), labels[run.path], reference) for run in runs]
    context = {"title": f"Sweep {path.name}", "version": __version__, "path": str(path),
               "runs": rows, "columns": COLUMNS, "figures": figure_entries(figures, path),
               "files": [f"{r.name}/" for r in runs]}  # fmt: skip
    md, html = path / "report.md", path / "report.html"
    write_atomic(render("sweep.md.j2", context), md)
    write_atomic(render("sweep.html.j2", context), html)
    return ReportFiles(md, html, tuple(p for f in figures for p in (f.png, f.svg)))
