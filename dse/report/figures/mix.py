"""The hardware-mix (MILP) report: which pools the solver bought, what each costs and how full
each resource runs (``dse/search/mix_rates.py`` writes ``mix`` and the summary)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...version import __version__
from ..context import fmt
from ..load import RunResults
from .style import PALETTE, Figure, save, subplots


def mix_figure(run: RunResults, folder: Path) -> Figure | None:
    mix = run.table("mix")
    if mix.empty or not {"workers", "usd_per_hour", "option"} <= set(mix.columns):
        return None  # no feasible mix: the report says why (summary.reason)
    used = mix[mix["workers"] > 0]
    util = run.summary.get("utilization") or {}
    fig, (ax1, ax2) = subplots(1, 2, figsize=(12, 0.5 * max(len(used), 3) + 1.8))  # fmt: skip
    y = np.arange(len(used))[::-1]
    colors = [PALETTE[0] if k == "decode" else PALETTE[1] for k in used.get("kind", [])]
    ax1.barh(y, used["usd_per_hour"], color=colors)
    ax1.set_yticks(y, [f"{o} × {w}" for o, w in zip(used["option"], used["workers"])])
    ax1.set_xlabel("$ per hour (all-in)")
    ax1.set_title(
        f"Chosen pools ({run.summary.get('status')}): ${run.summary.get('usd_per_hour', 0):,.0f}/h"
    )
    ax1.grid(axis="x", alpha=0.3)
    names = list(util)
    ax2.barh(np.arange(len(names))[::-1], [100 * float(util[n]) for n in names], color=PALETTE[2])
    ax2.set_yticks(np.arange(len(names))[::-1], names)
    ax2.set_xlim(0, 105)
    ax2.set_xlabel("utilization at the demand (%)")
    ax2.set_title("How full each resource runs (binding ≈ 100 %)")
    ax2.grid(axis="x", alpha=0.3)
    caption = ("Least-cost mix from the MILP (cvxpy + HiGHS): pools bought (workers × option) and "
               "their hourly cost; right, each resource's utilization at the demand.")  # fmt: skip
    return save(fig, folder, "mix", "Least-cost hardware mix", caption)


def mix_context(run: RunResults, figures: list[dict]) -> dict:
    s = run.summary
    mix = run.table("mix")
    rows = mix[mix["workers"] > 0] if len(mix) and "workers" in mix else mix
    return {
        "title": run.title, "study": s.get("study"), "run": run.name, "version": __version__,
        "status": s.get("status"), "reason": s.get("reason") or "",
        "headline": [(k, fmt(s.get(k))) for k in ("usd_per_hour", "usd_per_mtok", "capex_usd",
                     "power_kw", "output_tok_s", "hit_rate", "cache", "solve_s") if k in s],
        "workers": s.get("workers") or {}, "binding": ", ".join(s.get("binding") or []),
        "notes": s.get("notes") or [],
        "rows": [{c: fmt(r[c]) for c in rows.columns} for _, r in rows.iterrows()],
        "columns": list(rows.columns), "figures": figures, "files": [],
    }  # fmt: skip
