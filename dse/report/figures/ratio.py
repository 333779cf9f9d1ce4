"""Cost advantage across interactivity: at each tok/s/user target, how many times cheaper per
million tokens each system is than the cheapest reference system (``report.ratio_to``, e.g.
the Blackwell racks), so a claim such as "one-tenth the cost per million tokens" becomes a
question of *where* on the interactivity axis it holds, if anywhere.

For a target ``x`` a system's cost is the cheapest ``usd_per_mtok`` among its evaluated designs
that meet the study's constraints and reach ``x`` or more (its frontier read as a staircase);
the reference's is the cheapest over the reference systems. Past the end of the reference's
frontier no reference design reaches ``x``: the advantage is unbounded there and the table
says so (``reference_reaches`` False) rather than dividing by nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..review import Review
from .frontier import interactivity
from .style import Figure, colors_for, save, subplots

TARGETS = 48  # interactivity targets, geometric between the slowest and fastest design


def cheapest_from(x: np.ndarray, cost: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Cheapest ``cost`` among designs with ``x >= target``, per target (inf where none)."""
    order = np.argsort(-x, kind="stable")
    xs, best = x[order], np.minimum.accumulate(cost[order])  # fastest first, running minimum
    reach = np.searchsorted(-xs, -targets, side="right")  # designs with x >= target
    return np.where(reach > 0, best[np.maximum(reach - 1, 0)], np.inf)


def cost_ratio_table(review: Review, reference: list[str]) -> pd.DataFrame:
    """One row per (target, system): its cheapest $/Mtok reaching the target, the reference's,
    and ``advantage`` = reference cost / system cost (> 1: cheaper than the reference)."""
    x_col = interactivity(review)[0]
    pool = review.candidates
    if pool.empty or not set(reference) & set(pool["system"]):
        return pd.DataFrame()
    x_all = pool[x_col].to_numpy(np.float64)
    lo, hi = max(float(np.min(x_all)), 1e-3), float(np.max(x_all))
    targets = np.geomspace(lo, hi, TARGETS) if hi > lo else np.array([lo])
    per_system = {}
    for system, part in pool.groupby("system", sort=False):
        per_system[system] = cheapest_from(part[x_col].to_numpy(np.float64),
                                           part["usd_per_mtok"].to_numpy(np.float64), targets)  # fmt: skip
    refs = [s for s in reference if s in per_system]
    ref_cost = np.min([per_system[s] for s in refs], axis=0)
    ref_name = np.array(refs)[np.argmin([per_system[s] for s in refs], axis=0)]
    rows = []
    for system, cost in per_system.items():
        reaches, ref_reaches = np.isfinite(cost), np.isfinite(ref_cost)
        advantage = np.where(reaches & ref_reaches,
                             ref_cost / np.where(reaches, cost, 1.0), np.nan)  # fmt: skip
        rows.append(pd.DataFrame({
            x_col: targets, "system": system, "usd_per_mtok": np.where(reaches, cost, np.nan),
            "reference_system": np.where(ref_reaches, ref_name, ""),
            "reference_usd_per_mtok": np.where(ref_reaches, ref_cost, np.nan),
            "reference_reaches": ref_reaches, "advantage": advantage,
        }))  # fmt: skip
    return pd.concat(rows, ignore_index=True)


def cost_ratio_figure(review: Review, folder: Path, reference: list[str]) -> Figure | None:
    """The advantage of every system over the cheapest reference system, per target; writes the
    table beside the figure (``figures/cost_ratio.csv``)."""
    table = cost_ratio_table(review, reference)
    if table.empty:
        return None
    x_col, x_label = interactivity(review)
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / "cost_ratio.csv", index=False, float_format="%.6g")
    mix_colors = colors_for(review.mixes)  # the other figures' colours: one per system's mix
    pool = review.candidates
    first_mix = pool.drop_duplicates("system").set_index("system")["mix"] if "mix" in pool else {}
    fig, ax = subplots(figsize=(7.5, 4.8))
    for system, part in table.groupby("system", sort=False):
        ok = part["advantage"].notna()
        ref = system in reference  # at most 1: drawn thin, for where each reference is cheapest
        ax.plot(part.loc[ok, x_col], part.loc[ok, "advantage"], lw=0.9 if ref else 1.8,
                ls="--" if ref else "-", color=mix_colors.get(first_mix.get(system), "k"),
                label=f"{system} (reference)" if ref else system)  # fmt: skip
    ends = table.loc[table["reference_reaches"], x_col]
    if len(ends):
        ax.axvline(ends.max(), color="0.3", ls=":", lw=1)
        ax.annotate("reference frontier ends", (ends.max(), 1.0), xycoords=("data", "axes fraction"),
                    rotation=90, va="top", ha="right", fontsize=7, color="0.3")  # fmt: skip
    ax.axhline(1.0, color="0.5", lw=0.8)
    ax.axhline(10.0, color="0.5", lw=0.8, ls="--")
    ax.annotate("10x (one-tenth the cost)", (0.5, 10.0), xycoords=("axes fraction", "data"),
                va="bottom", ha="center", fontsize=7, color="0.4")  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel(x_label)
    ax.set_ylabel(f"cost advantage over the cheapest of {', '.join(reference)}")
    ax.grid(alpha=0.3, which="both")
    low = np.nanmin(table["advantage"]) if table["advantage"].notna().any() else 1.0
    ax.set_ylim(min(0.8, 0.8 * low), 14.0 if np.nanmax(table["advantage"]) < 10 else None)
    ax.legend(fontsize=7, loc="upper left", frameon=False)
    ax.set_title("Cost per million tokens relative to the reference, across interactivity",
                 fontsize=9)  # fmt: skip
    caption = ("At each tok/s/user target: the reference systems' cheapest $/Mtok reaching it "
               "divided by each system's (above 1: cheaper than the reference; dashed: 10x). "
               "Right of the dotted line no reference design reaches the target. Table: "
               "figures/cost_ratio.csv.")  # fmt: skip
    return save(fig, folder, "cost_ratio", "Cost advantage across interactivity", caption)


__all__ = ["cheapest_from", "cost_ratio_figure", "cost_ratio_table"]
