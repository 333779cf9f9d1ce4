"""The throughput-interactivity frontier (per GPU, per $, per MW) and $/Mtok vs interactivity.

Each system (hardware mix) gets one colour: its evaluated designs as a faint cloud, its own
frontier as a staircase (the best y reachable at that tok/s/user or more), and the points on
the global frontier with error bars from the model's held-out error for that hardware
(:mod:`dse.report.accuracy`). Recommended configurations are labelled #1, #2, ...; SLA bounds
on tok/s/user are vertical lines.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import EngFormatter

from ..review import Review
from .style import Figure, colors_for, pareto_2d, sample, save, subplots

# y-axis metrics: (column or derived name, axis label, larger is better)
PANELS = (
    ("tok_s_per_unit", "output tok/s per GPU (accelerator)", True),
    ("tok_per_usd", "output tokens per $ (all-in cost)", True),
    ("tok_s_per_mw", "output tok/s per MW (at the wall)", True),
)
BACKGROUND_POINTS = 4000  # per system; a cloud, not every point


def with_derived(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``tok_per_usd`` = output tokens per dollar of all-in hourly cost."""
    if frame.empty or "tok_per_usd" in frame:
        return frame
    usd = frame["usd_per_hour"].to_numpy(dtype=np.float64)
    tok = frame["output_tok_s"].to_numpy(dtype=np.float64) * 3600.0
    return frame.assign(tok_per_usd=np.divide(tok, usd, out=np.zeros_like(tok), where=usd > 0))


def interactivity(review: Review) -> tuple[str, str]:
    """(column, axis label) of the x axis: the mean request's tok/s/user, or the p99 request's
    (``tok_s_user_p99`` = 1000 / p99 TPOT) when the study's objectives name it (a frontier
    drawn on p99 interactivity, as MLPerf states its latency bounds)."""
    if any(o.metric == "tok_s_user_p99" for o in review.objectives):
        return "tok_s_user_p99", "p99 interactivity: output tok/s per user (1000 / p99 TPOT)"
    return "tok_s_user", "interactivity: output tok/s per user"


def _sla_lines(ax, review: Review) -> None:
    """Vertical lines where an SLA bounds interactivity: tok/s/user minima, and TPOT maxima
    (TPOT <= t ms is tok/s/user >= 1000 / t: TPOT is per emitted token), on the axis's own
    statistic (mean, or p99 on a p99 axis)."""
    suffix = "_p99" if interactivity(review)[0] == "tok_s_user_p99" else ""
    bounds = [(c, ":", "constraint") for c in review.constraints]
    bounds += [(c, "--", "target") for c in review.best_where]
    for c, style, name in bounds:
        if c.metric == "tok_s_user" + suffix and c.low is not None:
            x, text = c.low, f"{name}: {c.metric} ≥ {c.low:g}"
        elif c.metric == "tpot_ms" + suffix and c.high:
            x, text = 1000.0 / c.high, f"{name}: {c.metric} ≤ {c.high:g} ms"
        else:
            continue
        ax.axvline(x, color="0.3", ls=style, lw=1)
        ax.annotate(text, (x, 1.0), xycoords=("data", "axes fraction"), rotation=90, va="top",
                    ha="right", fontsize=7, color="0.3")  # fmt: skip


def _sla_text(review: Review) -> str:
    from ..review import bounds_text

    parts = [f"constraints: {bounds_text(review.constraints) or 'none'}"]
    if review.best_where:
        parts.append(f"target: {bounds_text(review.best_where)}")
    return "; ".join(parts)


def _panel(ax, review: Review, y: str, ylabel: str, bigger: bool, log_y: bool) -> None:
    x, xlabel = interactivity(review)
    colors = colors_for(review.mixes)
    cloud = with_derived(review.candidates)
    front = with_derived(review.frontier)
    for mix in review.mixes:
        c = colors[mix]
        mine = cloud[cloud["mix"] == mix] if len(cloud) else cloud
        if mine.empty:
            continue
        bg = sample(mine, BACKGROUND_POINTS)
        ax.scatter(bg[x], bg[y], s=3, color=c, alpha=0.12, lw=0, rasterized=True)
        idx = pareto_2d(mine[x].to_numpy(), mine[y].to_numpy(), bigger)
        stair = mine.iloc[idx]
        ax.step(stair[x], stair[y], where="pre", color=c, lw=1.4,
                label=mix)  # fmt: skip
        on = front[(front["mix"] == mix) & front.get("on_frontier", True)] if len(front) else front
        if len(on):
            band = review.band(on.iloc[0])
            ax.errorbar(on[x], on[y], xerr=on[x] * band.interactivity_pct / 100,
                        yerr=on[y] * band.throughput_pct / 100, fmt="o", ms=3.5, color=c,
                        ecolor=c, elinewidth=0.6, alpha=0.9, capsize=0)  # fmt: skip
    top = with_derived(review.top)
    for _, row in top.iterrows():
        ax.annotate(row["label"], (row[x], row[y]), xytext=(4, 4),
                    textcoords="offset points", fontsize=8, weight="bold")  # fmt: skip
        ax.plot(row[x], row[y], marker="*", ms=10, color=colors.get(row["mix"], "k"),
                mec="k", mew=0.6, ls="none")  # fmt: skip
    _sla_lines(ax, review)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if log_y:
        ax.set_yscale("log")
    else:
        ax.yaxis.set_major_formatter(EngFormatter(sep=""))  # 600k, not 600000
    ax.grid(alpha=0.3)


def frontier_figure(review: Review, folder: Path) -> Figure:
    fig, axes = subplots(1, 3, figsize=(15, 4.6))
    for ax, (y, label, bigger) in zip(axes, PANELS):
        _panel(ax, review, y, label, bigger, log_y=False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(4, max(1, len(labels))),
               frameon=False)  # fmt: skip
    fig.suptitle(f"{review.run.title}: throughput vs interactivity\n{_sla_text(review)}")
    caption = (
        "Each colour is one system (hardware mix). Faint dots: evaluated designs meeting the "
        "constraints; line: that system's frontier (best value at that tok/s/user or more); "
        "dots with bars: designs on the global frontier, bars = the model's median held-out "
        "error for the hardware (see Accuracy); stars: recommended configurations."
    )
    return save(fig, folder, "frontier", "Throughput-interactivity frontier", caption)


def cost_figure(review: Review, folder: Path) -> Figure:
    fig, ax = subplots(figsize=(7.5, 4.8))
    _panel(ax, review, "usd_per_mtok", "$ per million output tokens (all-in)", False, log_y=True)
    ax.legend(fontsize=7, loc="upper left", frameon=False)
    ax.set_title(f"Cost per million tokens vs interactivity\n{_sla_text(review)}", fontsize=9)
    caption = ("Cheapest cost reachable at each interactivity, per system; bars are the model's "
               "held-out throughput error (cost scales with 1/throughput).")  # fmt: skip
    return save(fig, folder, "cost", "$ per Mtok vs interactivity", caption)
