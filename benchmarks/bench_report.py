"""How long the design-review outputs take: each figure, the documents, and the whole report.

Runs the default study once without its report (warm JAX cache assumed; the first run on a
machine compiles) and then times ``write_report`` on its folder, figure by figure::

    .venv/bin/python benchmarks/bench_report.py          # ~45 s warm
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path


def main() -> None:
    import dse.search
    from dse.report import build_review, load_run, write_report
    from dse.report.figures.breakdown import breakdown_figure
    from dse.report.figures.frontier import cost_figure, frontier_figure
    from dse.report.figures.ratio import cost_ratio_figure
    from dse.report.figures.sensitivity import sensitivity_figure
    from dse.report.figures.workload import cache_figure, session_figure, session_time_figure

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        t0 = time.perf_counter()
        outcome = dse.search.run(overrides=["report.enabled=false"], out_dir=run_dir)
        print(f"default study without report: {time.perf_counter() - t0:.1f} s "
              f"({outcome.summary['evaluated']:,} designs)")  # fmt: skip
        _time_whatif(run_dir)
        run = load_run(run_dir)
        review = build_review(run)
        workload = run.summary["workload"]
        figs = Path(tmp) / "figures"
        for name, make in (
            ("frontier", lambda: frontier_figure(review, figs)),
            ("cost", lambda: cost_figure(review, figs)),
            ("cost_ratio", lambda: cost_ratio_figure(review, figs, ["gb200_nvl72", "gb300_nvl72"])),
            ("breakdown", lambda: breakdown_figure(review, figs)),
            ("sensitivity", lambda: sensitivity_figure(review, figs)),
            ("cache", lambda: cache_figure(review, run, figs)),
            ("session", lambda: session_figure(run, workload, figs)),
            ("session_time", lambda: session_time_figure(review, figs)),
        ):
            t = time.perf_counter()
            make()
            print(f"  figure {name:<12} {time.perf_counter() - t:5.2f} s (PNG + SVG)")
        times = []
        for _ in range(3):
            t = time.perf_counter()
            files = write_report(run_dir)
            times.append(time.perf_counter() - t)
        size = sum(p.stat().st_size for p in files.all)
        print(f"write_report (all figures, report.md, report.html): best of 3 {min(times):.2f} s, "
              f"{size / 1e6:.2f} MB written, report.html {files.html.stat().st_size / 1e3:.0f} KB")  # fmt: skip


def _time_whatif(run_dir: Path) -> None:
    """The study's what-if table (``dse.search.whatif``) from its points, twice: the first call
    also loads the sweep program for the candidates' batch size (the study warms it while it
    sweeps), the second is the steady cost."""
    import pandas as pd

    from dse.search.objectives import Constraint, Objective
    from dse.search.whatif import what_would_change
    from dse.stack import Stack

    stack = Stack("agentic_coding_400k")
    points = pd.read_parquet(run_dir / "points.parquet")
    target = (Constraint("tok_s_user", 50.0, None), Constraint("tok_s_user", 400.0, None))
    for label in ("first call", "again"):
        t = time.perf_counter()
        table = what_would_change(stack, points, "kimi-k2", rank=Objective("usd_per_mtok", False),
                                  target=target)  # fmt: skip
        print(f"what-if ({label}): {time.perf_counter() - t:.2f} s, {len(table)} rows, "
              f"{table.attrs.get('model_calls', 0)} model calls")  # fmt: skip


if __name__ == "__main__":
    main()
