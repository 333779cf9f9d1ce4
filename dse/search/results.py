"""What a study leaves in ``results/<study>/<run>/``: tables as parquet + CSV, the resolved
config, and a JSON summary.

    points.{parquet,csv}     every evaluated point (Optuna trials; exhaustive spaces up to
                             KEEP_ALL_POINTS; larger sweeps keep only the front)
    frontier.{parquet,csv}   the non-dominated feasible points meeting the constraints
    best.{parquet,csv}       the best config per objective and per system, each with a "why"
    config.yaml              the fully resolved configuration of the run
    summary.json             engine, counts, timings, hypervolume, what was written

Files are written to a temporary name and renamed (:mod:`dse.files`), so a killed run never
leaves a half table.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..files import atomic_path, write_text_atomic
from .objectives import Constraint, Objective, meets
from .pareto import hypervolume


def write_table(df: pd.DataFrame, out: Path, name: str) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix in ("parquet", "csv"):
        path = out / f"{name}.{suffix}"
        with atomic_path(path) as tmp:
            if suffix == "parquet":
                df.to_parquet(tmp, index=False)
            else:
                df.to_csv(tmp, index=False, float_format="%.6g")
        written.append(path.name)
    return written


def write_text(text: str, path: Path) -> str:
    return write_text_atomic(text, path).name


def best_configs(
    front: pd.DataFrame, objectives: tuple[Objective, ...], rank_by: Objective
) -> pd.DataFrame:
    """The front's extreme point per objective, and per system its best by ``rank_by``."""
    if front is None or front.empty:
        return pd.DataFrame()
    rows = []
    glob = front[front["on_frontier"]] if "on_frontier" in front else front
    for o in objectives:
        i = glob[o.metric].idxmax() if o.maximize else glob[o.metric].idxmin()
        row = glob.loc[i].copy()
        row["why"] = f"{'highest' if o.maximize else 'lowest'} {o.metric} on the frontier"
        rows.append(row)
    for system, part in front.groupby("system", sort=False):
        m = rank_by.metric
        i = part[m].idxmax() if rank_by.maximize else part[m].idxmin()
        row = part.loc[i].copy()
        row["why"] = (
            f"best {m} of {system} on its frontier (bound: {row['bound']}; "
            f"{row['tok_s_user']:.0f} tok/s/user, ${row['usd_per_mtok']:.2f}/Mtok)"
        )
        rows.append(row)
    return pd.DataFrame(rows).reset_index(drop=True)


def top_configs(frontier: pd.DataFrame, rank: Objective, where: tuple[Constraint, ...] = (),
                n: int = 5, per_system: int = 2) -> tuple[pd.DataFrame, bool]:  # fmt: skip
    """The configurations to recommend: the ``n`` frontier designs best by ``rank`` among those
    meeting ``where`` (``best_where``), at most ``per_system`` from one system so that a review
    sees the alternatives rather than near-copies of the winner. The flag is False when no
    design meets ``where``; the best without it are returned then."""
    if frontier.empty:
        return frontier, True
    chosen, met = frontier, True
    if where:
        inside = frontier[meets({c: frontier[c].to_numpy() for c in frontier}, where)]
        chosen, met = (inside, True) if len(inside) else (frontier, False)
    key = "point" if "point" in chosen else "trial"

    def ranked(df):
        return df.sort_values([rank.metric, key], ascending=[not rank.maximize, True])

    # Optuna may evaluate one design twice, and pools of a different size can give the same
    # per-unit figures: one row per (system, software, rounded metrics) is enough to show.
    shown = [
        m for m in (rank.metric, "tok_s_user", "tok_s_per_unit", "usd_per_mtok") if m in chosen
    ]
    same = (
        chosen[["system", "software"]]
        .astype(str)
        .assign(**{m: [float(f"{v:.6g}") for v in chosen[m]] for m in shown})
    )
    distinct = ranked(chosen)[~same.loc[ranked(chosen).index].duplicated()]
    return ranked(ranked(distinct).groupby("system", sort=False).head(per_system)).head(n), met


def front_hypervolume(front: pd.DataFrame, objectives: tuple[Objective, ...], reference) -> float:
    if front is None or front.empty:
        return 0.0
    if "on_frontier" in front:
        front = front[front["on_frontier"]]
    values = front[[o.metric for o in objectives]].to_numpy(dtype=np.float64)
    return hypervolume(values, reference, [o.maximize for o in objectives])


def default_reference(objectives: tuple[Objective, ...], front: pd.DataFrame) -> list[float]:
    """0 for maximized metrics, 1.1x the front's worst for minimized ones."""
    ref = []
    for o in objectives:
        worst = float(front[o.metric].max()) if front is not None and len(front) else 1.0
        ref.append(0.0 if o.maximize else 1.1 * worst)
    return ref


def summary_json(path: Path, summary: dict) -> str:
    return write_text(json.dumps(summary, indent=2, default=_plain) + "\n", path)


def _plain(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, (Objective, Constraint)):
        return x.__dict__
    return str(x)
