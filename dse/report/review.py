"""What a design review needs from one run: the eligible designs, the recommended top-N, the
baseline they are compared with, and the model's error for the hardware involved.

Everything here is derived from the run folder (:mod:`dse.report.load`) and the shipped
calibration error table (:mod:`dse.report.accuracy`); figures and templates only read it.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..search.objectives import Constraint, Objective, meets, parse_constraints, parse_objectives
from ..search.results import top_configs
from .accuracy import ErrorBand, error_band
from .figures.style import mix_labels
from .load import RunResults

# Workload names of fixed-length traffic (no agent sessions: no session table or times).
FIXED_TRAFFIC = ("fixed", "custom", None)

HARDWARE_COLUMNS = ("decode_hardware", "prefill_hardware", "ffn_hardware")


@dataclass(frozen=True)
class Review:
    run: RunResults
    objectives: tuple[Objective, ...]
    constraints: tuple[Constraint, ...]
    best_where: tuple[Constraint, ...]
    rank: Objective
    candidates: pd.DataFrame  # designs that are feasible and meet the constraints
    frontier: pd.DataFrame  # each system's front (the run's frontier table)
    top: pd.DataFrame  # the recommended configurations, ranked, with a `label` (#1, #2, ...)
    baseline: pd.Series | None  # what the top configurations are compared with
    baseline_note: str
    note: str  # caveat on the selection ("" when best_where was met)
    errors: dict[str, ErrorBand]  # hardware -> the model's held-out error

    @property
    def systems(self) -> list[str]:
        """Systems in the space's order (stable colours across figures and runs)."""
        return _space_systems(self.run.config, self.frontier)

    @property
    def mixes(self) -> list[str]:
        """'system (hardware mix)' labels, in the systems' order: what figures colour by."""
        seen = [*self.frontier.get("mix", []), *self.candidates.get("mix", [])]
        order = {s: i for i, s in enumerate(self.systems)}
        return sorted(dict.fromkeys(seen), key=lambda m: (order.get(m.split(" (")[0], 1e9), m))

    def band(self, row) -> ErrorBand:
        """The error band of a design: its decode hardware's (the pool that sets tok/s/user)."""
        return self.errors[str(row["decode_hardware"])]


def _with_mix(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(mix=mix_labels(frame)) if len(frame) else frame


def _space_systems(config: dict, frame: pd.DataFrame) -> list[str]:
    space = config.get("space") or {}
    systems = space.get("systems") or (space.get("choices") or {}).get("system") or []
    named = list(systems)  # a mapping (per-system fields) or a list of names
    seen = list(frame["system"].unique()) if "system" in frame else []
    return list(dict.fromkeys([*named, *seen]))


def build_review(
    run: RunResults, top: int = 5, per_system: int = 2, baseline: str | None = None
) -> Review:
    cfg = run.config
    objectives = parse_objectives(cfg.get("objectives") or ["max:tok_s_user", "min:usd_per_mtok"])
    constraints = parse_constraints(cfg.get("constraints"))
    where = parse_constraints(cfg.get("best_where"), "best_where")
    (rank,) = parse_objectives([cfg.get("rank_by") or "min:usd_per_mtok"], "rank_by")
    frontier = run.table("frontier")
    pool = run.table("points") if not run.table("points").empty else frontier
    candidates = pool
    if len(pool):
        ok = meets({c: pool[c].to_numpy() for c in pool}, constraints)
        candidates = pool[ok]
    top_rows, met = top_configs(frontier, rank, where, top, per_system)
    note = "" if met else (f"no frontier design meets {bounds_text(where)}; the configurations "
                           "shown are the best without that bound")  # fmt: skip
    chosen = frontier
    if met and where and len(frontier):
        chosen = frontier[meets({c: frontier[c].to_numpy() for c in frontier}, where)]
    top_rows = top_rows.assign(label=[f"#{i + 1}" for i in range(len(top_rows))])
    base, base_note = _baseline(run, chosen, rank, baseline)
    hardware = sorted(
        {str(h) for c in HARDWARE_COLUMNS if c in frontier for h in frontier[c].unique()}
    )
    candidates, frontier, top_rows = (_with_mix(t) for t in (candidates, frontier, top_rows))
    return Review(run, objectives, constraints, where, rank, candidates, frontier, top_rows, base,
                  base_note, note, {h: error_band(h) for h in hardware})  # fmt: skip


def _baseline(run, chosen, rank, system) -> tuple[pd.Series | None, str]:
    """The best design of the baseline system: ``report.baseline`` when given, else the first
    system the space lists (by convention the incumbent, e.g. GB200 NVL72 in the seed study)."""
    systems = _space_systems(run.config, run.table("frontier"))
    if system and system not in systems:
        near = difflib.get_close_matches(str(system), systems, n=1)
        hint = f"did you mean {near[0]}? " if near else ""
        raise ValueError(f"report.baseline={system!r} is not a system of this study; {hint}"
                         f"choose one of {', '.join(systems)}")  # fmt: skip
    if chosen.empty:
        return None, ""
    why = "report.baseline" if system else "the first system of the space"
    system = system or systems[0]
    rows = chosen[chosen["system"] == system]
    if rows.empty:
        rows = run.table("frontier")
        rows = rows[rows["system"] == system] if len(rows) else rows
        if rows.empty:
            return None, f"baseline system {system} has no design on the frontier"
    best = top_configs(rows, rank, n=1)[0].iloc[0]  # the same ranking as the recommendations
    return best, f"best {rank.metric} of {system} ({why})"


def bounds_text(constraints) -> str:
    parts = []
    for c in constraints:
        if c.low is not None:
            parts.append(f"{c.metric} ≥ {c.low:g}")
        if c.high is not None:
            parts.append(f"{c.metric} ≤ {c.high:g}")
    return ", ".join(parts)


def deltas(review: Review, metrics: tuple[str, ...]) -> pd.DataFrame:
    """Relative change (%) of each top configuration against the baseline."""
    if review.baseline is None or review.top.empty:
        return pd.DataFrame()
    base = review.baseline
    out = {"label": review.top["label"].to_numpy()}
    for m in metrics:
        b = float(base[m])
        v = review.top[m].to_numpy(dtype=np.float64)
        out[m] = 100.0 * (v - b) / abs(b) if b else np.full(len(v), np.nan)
    return pd.DataFrame(out)
