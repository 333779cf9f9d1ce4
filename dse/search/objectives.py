"""What a search optimizes and what it must respect, checked against the metric names.

Objectives are SystemMetrics fields with a direction; constraints bound any metric from below
and/or above (``{tok_s_user: {min: 400}, ttft_ms: {max: 2000}, capex_usd: {max: 5e6},
power_kw: {max: 150}}``) — budget, power cap, TTFT/TPOT SLA and interactivity floor are all
the same thing. Memory fit and pool sizing are the model's own ``feasible`` flag.

Violations are normalized by the bound (``(v - max) / |max|``) so Optuna's constraint values
(``<= 0`` feasible, via ``trial.set_constraint``) are comparable across metrics.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..model.system_metrics import SYSTEM_METRIC_FIELDS

NOT_OBJECTIVES = {"feasible", "reason", "bound"}
METRICS = tuple(f for f in SYSTEM_METRIC_FIELDS if f not in NOT_OBJECTIVES)


@dataclass(frozen=True)
class Objective:
    metric: str  # a SystemMetrics field
    maximize: bool


@dataclass(frozen=True)
class Constraint:
    metric: str
    low: float | None = None
    high: float | None = None


def _metric(name, where: str) -> str:
    name = str(name)
    if name not in METRICS:
        close = difflib.get_close_matches(name, METRICS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"{where}: unknown metric {name!r}{hint} (metrics: {', '.join(METRICS)})")
    return name


def parse_objectives(items, key: str = "objectives") -> tuple[Objective, ...]:
    """From ``[{metric: tok_s_user, maximize: true}, ...]`` or ``["max:tok_s_user", ...]`` (one
    such string alone is a list of one); ``key`` names the setting in errors."""
    if isinstance(items, str):
        items = [items]
    if not items:
        raise ValueError(f"{key}: give at least one, e.g. [{{metric: tok_s_user, maximize: true}}]")
    out = []
    for i, item in enumerate(items):
        where = f"{key}[{i}]" if key == "objectives" else key
        if isinstance(item, str):
            sense, _, name = item.partition(":")
            if sense not in ("max", "min") or not name:
                raise ValueError(f"{where}: write 'max:METRIC' or 'min:METRIC', got {item!r}")
            out.append(Objective(_metric(name, where), sense == "max"))
            continue
        item = dict(item)
        if set(item) - {"metric", "maximize"} or "metric" not in item:
            raise ValueError(f"{where}: give {{metric: NAME, maximize: true|false}}, got {item}")
        out.append(Objective(_metric(item["metric"], where), bool(item.get("maximize", True))))
    if len({o.metric for o in out}) != len(out):
        raise ValueError(f"{key}: a metric is listed twice")
    return tuple(out)


def parse_constraints(mapping, key: str = "constraints") -> tuple[Constraint, ...]:
    """Bounds per metric from ``{metric: {min: X, max: Y}}`` (the study's ``key``, named in
    errors); a metric set to null is dropped."""
    out = []
    if mapping is not None and not isinstance(mapping, Mapping):
        raise ValueError(f"{key}={mapping!r}: give {{metric: {{min: X, max: Y}}}}")
    for name, bounds in dict(mapping or {}).items():
        where = f"{key}.{name}"
        metric = _metric(name, where)
        if bounds is None:
            continue
        if not isinstance(bounds, Mapping):
            raise ValueError(
                f"{where}={bounds!r}: a bound is {{min: X}} and/or {{max: Y}}; on the command "
                f"line write +{where}.max={bounds} (or .min)"
            )
        bounds = dict(bounds)
        if not bounds or set(bounds) - {"min", "max"}:
            raise ValueError(f"{where}: give {{min: X}} and/or {{max: Y}}, got {bounds}")
        lo, hi = bounds.get("min"), bounds.get("max")
        for side, v in (("min", lo), ("max", hi)):
            if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v)):
                raise ValueError(f"{where}.{side}={v!r} must be a finite number or null")
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"{where}: min {lo} > max {hi}; no design can meet it")
        if lo is not None or hi is not None:
            out.append(Constraint(metric, None if lo is None else float(lo),
                                  None if hi is None else float(hi)))  # fmt: skip
    return tuple(out)


def violations(metrics: dict[str, np.ndarray], constraints: tuple[Constraint, ...]) -> np.ndarray:
    """[n, 1 + k] relative violations (<= 0 means met): the model's feasibility, then each
    constraint's larger side."""
    n = len(metrics["feasible"])
    cols = [np.where(np.asarray(metrics["feasible"]) > 0.5, -1.0, 1.0)]
    for c in constraints:
        v = np.asarray(metrics[c.metric], dtype=np.float64)
        worst = np.full(n, -np.inf)
        if c.low is not None:
            worst = np.maximum(worst, (c.low - v) / max(abs(c.low), 1e-9))
        if c.high is not None:
            worst = np.maximum(worst, (v - c.high) / max(abs(c.high), 1e-9))
        cols.append(worst)
    return np.stack(cols, axis=1)


def meets(metrics: dict[str, np.ndarray], constraints: tuple[Constraint, ...]) -> np.ndarray:
    return (violations(metrics, constraints) <= 0.0).all(axis=1)
