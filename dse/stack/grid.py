"""Evaluate a small declared grid of whole-stack designs (``dse stack STUDY.yaml``).

A grid file names one model and workload, lists systems and software configs, and sweeps any
system-design fields over lists of values; every combination is evaluated in one vectorized
call and written as CSV (all points) plus a summary of the best feasible point per system under
the file's constraints. The search engines of ``dse search`` generalize this; it exists so the
stack model's studies can run today.

    model: kimi-k2
    workload: agentic_coding_400k
    systems: [gb200_nvl72, vr200_nvl72, vr200_lpx_afd]
    software: [nvfp4_mtp]
    sweep: {batch: [1, 2, 4, 8], prefill_units: [16, 32]}
    constraints: {min_tok_s_user: 400}
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd

from ..files import load_yaml
from .api import Stack

GRID_KEYS = {"title", "model", "workload", "systems", "software", "sweep", "constraints", "notes"}
CONSTRAINT_KEYS = {"min_tok_s_user", "max_ttft_ms", "max_accuracy_penalty_pct"}


def load_grid(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise ValueError(f"grid file {path} does not exist")
    data = load_yaml(path.read_text()) or {}
    unknown = set(data) - GRID_KEYS
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {sorted(unknown)}; allowed {sorted(GRID_KEYS)}")
    for key in ("model", "systems"):
        if key not in data:
            raise ValueError(f"{path}: give {key!r}")
    bad = set(data.get("constraints") or {}) - CONSTRAINT_KEYS
    if bad:
        raise ValueError(
            f"{path}: unknown constraint(s) {sorted(bad)}; allowed {sorted(CONSTRAINT_KEYS)}"
        )
    return data


def run_grid(grid: dict, stack: Stack | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(all points, best feasible point per system/software by $/Mtok under the constraints)."""
    stack = stack or Stack(workload=grid.get("workload", "agentic_coding"))
    systems = grid["systems"]
    # ``systems`` is a list of names, or a mapping name -> sweep entries for that system only
    # (e.g. an LPX pool's own unit counts), merged over the global ``sweep``.
    if not isinstance(systems, dict):
        systems = {name: {} for name in systems}
    rows = []
    for system, own in systems.items():
        sweep = {**(grid.get("sweep") or {}), **(own or {})}
        names = list(sweep)
        for software in grid.get("software") or ["default"]:
            for combo in itertools.product(*(sweep[n] for n in names)):
                rows.append(dict(model=grid["model"], system=system, software=software,
                                 **dict(zip(names, combo))))  # fmt: skip
    df = stack.evaluate(rows)
    c = grid.get("constraints") or {}
    ok = df["feasible"].copy()
    if "min_tok_s_user" in c:
        ok &= df["tok_s_user"] >= float(c["min_tok_s_user"])
    if "max_ttft_ms" in c:
        ok &= df["ttft_ms"] <= float(c["max_ttft_ms"])
    if "max_accuracy_penalty_pct" in c:
        ok &= df["accuracy_penalty_pct"] <= float(c["max_accuracy_penalty_pct"])
    df["meets_constraints"] = ok
    best = []
    for (system, software), part in df.groupby(["system", "software"], sort=False):
        good = part[part["meets_constraints"]]
        if len(good):
            row = good.sort_values("usd_per_mtok").iloc[0].copy()
            row["why"] = f"cheapest point meeting the constraints (bound: {row['bound']})"
        else:
            feas = part[part["feasible"]]
            if len(feas):
                row = feas.sort_values("tok_s_user", ascending=False).iloc[0].copy()
                row["why"] = (
                    f"no point meets the constraints; fastest feasible shown "
                    f"({row['tok_s_user']:.0f} tok/s/user, bound: {row['bound']})"
                )
            else:
                row = part.iloc[0].copy()
                row["why"] = f"no feasible point: {row['reason']}"
        best.append(row)
    return df, pd.DataFrame(best).reset_index(drop=True)
