"""What would have to be true: for each system that loses at the study's target, the value of
one uncertain parameter at which it would tie the winner, one parameter at a time, the rest
held (``whatif.csv`` and the report's "What would change the answer").

A design review challenges an answer through its assumptions first: "LPX loses because you
assumed a 5 us hop; at what hop would it win?", "what would GB300 have to cost?". For a system
``S`` that is not the winner ``W`` at the target (the study's constraints and ``best_where``,
ranked by ``rank_by``), and each parameter ``p`` that concerns one of ``S``'s chips (its price,
its power, its NIC-to-NIC hop latency, its generation's memory-bandwidth efficiency and fixed
time per kernel or per layer), the solver finds the value ``v`` where

    gap(v) = (score_S(v) - score_W(v)) / |score_W(v)|          (<= 0: S ties or wins)

changes sign. ``score_X(v)`` is the best rank value among ``X``'s candidate designs that meet
the target when the whole model runs with ``p = v`` (the winner is re-evaluated too: a
parameter both systems share, such as a generation's efficiency, moves both).

Candidates: each system's designs that the model finds feasible at the nominal values, on the
first Pareto layers of (rank metric, every bounded target metric), ``candidates`` of them
(the last layer's best by rank). A design far behind its own system's front at nominal values is not
reconsidered; that is the approximation (stated in the table's ``candidates`` column).

Numerics: ``score`` is a minimum over designs of a piecewise-smooth model with feasibility
steps, so ``gap(v)`` is piecewise smooth with jumps (a design starts or stops meeting the
target; the best design switches). Newton on the model's derivative would step across those
jumps, so the solver brackets: it walks a grid from the nominal value to the end of the
parameter's range that helps ``S`` (geometric where both ends are positive), takes the first
cell whose far end has ``gap <= 0`` and bisects it (in log space where geometric) to
``rel_tol`` of the value. The answer is the crossing nearest the nominal value at the grid's
resolution, reported as the bracket end where ``S`` ties (conservative). Where even the range's
end leaves ``gap > 0`` the answer is "no value in range", with the gap left there. Each model
call evaluates every candidate at one parameter value (values, not shapes, change: the sweep's
compiled program is reused, ``Stack.with_inputs``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import equinox as eqx
import numpy as np
import pandas as pd

from ..model.efficiency import EVIDENCE
from ..model.hardware import GENERATIONS
from ..model.system_design import SYSTEM_FIELDS
from ..stack import ModelInputs, Stack
from .objectives import Constraint, Objective, meets
from .pareto import pareto_mask

HOP_RANGE = (1.0, 25.0, "1 us: an RDMA write through one switch at best (ib_write_lat 1.4-1.9 us, "
             "ConnectX-7, OCI GB200 README); 25 us: the flat per-hop value dse used before 2026-12")  # fmt: skip
PRICE_RANGE = (
    0.1,
    2.0,
    "a tenth to twice the catalog price (every accelerator price is an estimate)",
)
POWER_RANGE = (0.5, 1.5, "half to 1.5x the catalog TDP")
# SRAM-first chips: per-layer synchronisation set by hand from Groq v1's speeds (~30-40 us per
# layer all-in, efficiency.py); the low end is a few direct C2C hops (< 1 us each, Groq ISCA'22).
LPU_RANGES = {
    "layer_sync_us": (2.0, 60.0, "a few C2C hops (< 1 us each, Groq ISCA'22) to twice Groq v1's "
                      "~30 us per layer (efficiency.py)"),
    "moe_layer_sync_us": (1.0, 30.0, "a C2C hop to twice the hand-set 15 us (efficiency.py)"),
    "mbu": (0.5, 0.95, "ESTIMATE: no public SRAM-bandwidth efficiency of an LPU; 0.5-0.95"),
}  # fmt: skip


@dataclass(frozen=True)
class Parameter:
    """One uncertain model input: its nominal value, the range a review would accept, which way
    helps a system that uses it (``lower``/``higher``), the chips it concerns, and how to set
    it (``apply``: inputs and a value in, new inputs out; pure)."""

    name: str
    label: str
    unit: str
    nominal: float
    low: float
    high: float
    helps: str
    chips: tuple[int, ...]
    source: str
    apply: Callable[[ModelInputs, float], ModelInputs]


def _with_entry(array, index: int, value: float) -> np.ndarray:
    """A float64 copy of ``array`` with one entry replaced (NumPy: a JAX scatter would
    dispatch, and compile, a program per call)."""
    out = np.array(array, dtype=np.float64)
    out[index] = value
    return out


def _hardware_setter(field: str, chip: int):
    def apply(inputs: ModelInputs, value: float) -> ModelInputs:
        new = _with_entry(getattr(inputs.tables.hardware, field), chip, value)
        return inputs._replace(tables=eqx.tree_at(
            lambda t: getattr(t.hardware, field), inputs.tables, new))  # fmt: skip

    return apply


def _efficiency_setter(field: str, generation: int):
    def apply(inputs: ModelInputs, value: float) -> ModelInputs:
        new = _with_entry(getattr(inputs.efficiency, field), generation, value)
        return inputs._replace(efficiency=eqx.tree_at(
            lambda e: getattr(e, field), inputs.efficiency, new))  # fmt: skip

    return apply


def _spanning(nominal: float, low: float, high: float) -> tuple[float, float]:
    """The range, widened to hold the nominal value (a calibrated value outside a prior range
    is still the model's value)."""
    return min(low, nominal), max(high, nominal)


def default_parameters(stack: Stack, chips: Sequence[int]) -> list[Parameter]:
    """The uncertain inputs that concern ``chips`` (hardware-table indices): per chip its price,
    TDP and NIC hop latency; per generation its memory-bandwidth efficiency and its fixed time
    per kernel (GPUs) or per layer (SRAM-first chips). Ranges and their sources are above and
    in ``efficiency.EVIDENCE``."""
    hw, eff = stack.tables.hardware, stack.calibration.efficiency
    out: list[Parameter] = []
    generations: dict[int, list[int]] = {}
    for c in sorted({int(c) for c in chips}):
        name = stack.hw_names[c]
        nominal = {f: float(np.asarray(getattr(hw, f))[c])
                   for f in ("price_usd", "tdp_w", "scaleout_hop_us", "scaleout_bandwidth_gbit")}  # fmt: skip
        lo, hi, why = PRICE_RANGE
        p = nominal["price_usd"]
        out.append(Parameter(f"price_usd[{name}]", f"{name} price", "USD", p, lo * p, hi * p,
                             "lower", (c,), why, _hardware_setter("price_usd", c)))  # fmt: skip
        lo, hi, why = POWER_RANGE
        p = nominal["tdp_w"]
        out.append(Parameter(f"tdp_w[{name}]", f"{name} TDP", "W", p, lo * p, hi * p, "lower",
                             (c,), why, _hardware_setter("tdp_w", c)))  # fmt: skip
        if nominal["scaleout_bandwidth_gbit"] > 0:
            lo, hi = _spanning(nominal["scaleout_hop_us"], *HOP_RANGE[:2])
            out.append(Parameter(f"scaleout_hop_us[{name}]", f"{name} NIC-to-NIC hop", "us",
                                 nominal["scaleout_hop_us"], lo, hi, "lower", (c,), HOP_RANGE[2],
                                 _hardware_setter("scaleout_hop_us", c)))  # fmt: skip
        generations.setdefault(int(np.asarray(hw.generation)[c]), []).append(c)
    for g, members in sorted(generations.items()):
        gen = GENERATIONS[g]
        sram = bool(np.asarray(hw.sram_first)[members[0]] > 0)
        fields = ("mbu", "layer_sync_us", "moe_layer_sync_us") if sram else ("mbu", "kernel_us")
        for f in fields:
            nominal = float(np.asarray(getattr(eff, f))[g])
            lo, hi, why = LPU_RANGES[f] if sram else EVIDENCE[f]
            lo, hi = _spanning(nominal, lo, hi)
            helps = "higher" if f == "mbu" else "lower"
            unit = "fraction" if f == "mbu" else "us"
            out.append(Parameter(f"{f}[{gen}]", f"{gen} {f}", unit, nominal, lo, hi, helps,
                                 tuple(members), why, _efficiency_setter(f, g)))  # fmt: skip
    return out


CANDIDATES = 48  # designs per system re-evaluated at every parameter value (module docstring)


def _chips_of(table: pd.DataFrame) -> np.ndarray:
    """Hardware indices a design uses: decode pool, prefill pool where it has one, FFN pool
    where it has one."""
    parts = [table["decode_hw"].to_numpy()]
    parts.append(np.where(table["prefill_units"].to_numpy() > 0, table["prefill_hw"], -1))
    parts.append(np.where(table["ffn_units"].to_numpy() > 0, table["ffn_hw"], -1))
    chips = np.unique(np.concatenate(parts).astype(int))
    return chips[chips >= 0]


def _target_metrics(target: tuple[Constraint, ...]) -> list[tuple[str, bool]]:
    """Bounded target metrics as (metric, maximize): a lower bound wants more."""
    out = []
    for c in target:
        if c.low is not None:
            out.append((c.metric, True))
        if c.high is not None:
            out.append((c.metric, False))
    return out


def _candidates(points: pd.DataFrame, rank: Objective, target, per_system: int) -> pd.DataFrame:
    """Each system's feasible designs on its first Pareto layers of (rank, bounded target
    metrics), ``per_system`` of them, the last layer's best by rank (module docstring)."""
    axes = list(dict.fromkeys([(rank.metric, rank.maximize), *_target_metrics(target)]))
    names, maximize = [m for m, _ in axes], [x for _, x in axes]
    kept = []
    for _, part in points[points["feasible"].astype(bool)].groupby("system", sort=False):
        values = part[names].to_numpy(np.float64)
        finite = np.isfinite(values).all(axis=1)
        part, values = part[finite], values[finite]
        left, order = np.ones(len(part), bool), []
        while left.any() and len(order) < per_system:
            idx = np.flatnonzero(left)
            layer = idx[pareto_mask(values[idx], maximize)]
            rank_key = values[layer, 0] * (-1.0 if maximize[0] else 1.0)
            order.extend(layer[np.argsort(rank_key, kind="stable")])  # best by rank first
            left[layer] = False
        kept.append(part.iloc[order[:per_system]])
    return pd.concat(kept) if kept else points.iloc[:0]


def _columns(stack: Stack, table: pd.DataFrame, model: str) -> dict[str, np.ndarray]:
    cols = {f: table[f].to_numpy(np.float64) for f in SYSTEM_FIELDS if f != "model"}
    cols["model"] = np.full(
        len(table), float(stack.model_names.index(stack.catalog.model(model).id))
    )
    return cols


class _Scorer:
    """Best rank value per system at given inputs: the one place the model is called."""

    def __init__(self, stack, table, model, rank, target, systems):
        self.stack, self.rank, self.target = stack, rank, target
        self.systems = list(systems)
        self.codes = np.array([self.systems.index(s) for s in table["system"]])
        self.points = table["point"].to_numpy() if "point" in table else np.arange(len(table))
        self.columns = _columns(stack, table, model)
        self.calls = 0

    def __call__(self, inputs: ModelInputs):
        """(best key per system [S], the point id of each system's best design [S]); the key is
        the rank value oriented for minimization, inf where no candidate meets the target.
        Every call evaluates all candidates: one batch size, so one compiled program (a
        subset's own size would load another, seconds, to save milliseconds)."""
        metrics = self.stack.with_inputs(inputs).evaluate_arrays(self.columns)
        self.calls += 1
        value = np.asarray(metrics[self.rank.metric], np.float64)
        key = -value if self.rank.maximize else value
        key = np.where(meets(metrics, self.target) & np.isfinite(key), key, np.inf)
        best = np.full(len(self.systems), np.inf)
        which = np.full(len(self.systems), -1)
        for s in np.unique(self.codes):
            mine = np.flatnonzero(self.codes == s)
            i = mine[np.argmin(key[mine])]
            if np.isfinite(key[i]):
                best[s], which[s] = key[i], self.points[i]
        return best, which


def _gap(best: np.ndarray, s: int, w: int) -> float:
    """Relative gap of system ``s`` behind ``w`` in minimization keys (<= 0: ties or wins)."""
    if not np.isfinite(best[s]):
        return np.inf
    if not np.isfinite(best[w]):
        return -np.inf
    return float((best[s] - best[w]) / max(abs(best[w]), 1e-300))


def _grid(nominal: float, end: float, n: int) -> np.ndarray:
    """``n`` values from next to ``nominal`` to ``end`` (geometric where both are positive)."""
    if nominal > 0 and end > 0:
        return nominal * (end / nominal) ** (np.arange(1, n + 1) / n)
    return nominal + (end - nominal) * np.arange(1, n + 1) / n


def what_would_change(
    stack: Stack,
    points: pd.DataFrame,
    model: str,
    *,
    rank: Objective,
    target: tuple[Constraint, ...] = (),
    parameters: Sequence[Parameter] | None = None,
    candidates: int = CANDIDATES,
    grid: int = 4,
    rel_tol: float = 0.02,
) -> pd.DataFrame:
    """One row per (losing system, parameter that concerns it), see the module docstring.

    ``points``: evaluated designs with their ``system`` label, every ``SYSTEM_FIELDS`` column
    (``model`` aside: the study's ``model`` name) and the metrics (``feasible``, the rank and
    target metrics); a study's ``points`` table. ``parameters``: None for
    :func:`default_parameters` of the losing systems' chips. ``grid``: cells between the
    nominal value and the range's end; ``rel_tol``: the bisection's relative bracket width."""
    columns = ["system", "parameter", "label", "unit", "nominal", "low", "high", "helps",
               "verdict", "tie_value", "change_pct", "gap_nominal_pct", "gap_at_limit_pct",
               "winner", "winner_score", "system_score", "rank_metric", "tie_point",
               "candidates", "source"]  # fmt: skip
    if points is None or points.empty or "system" not in points:
        return pd.DataFrame(columns=columns)
    systems = list(dict.fromkeys(points["system"]))
    cands = _candidates(points, rank, target, candidates)
    base = stack.inputs
    rows: list[dict] = []
    if cands.empty:
        return pd.DataFrame(columns=columns)
    scorer = _Scorer(stack, cands, model, rank, target, systems)
    best, _ = scorer(base)
    w = int(np.argmin(best))
    if not np.isfinite(best[w]):
        return pd.DataFrame(columns=columns)  # nobody meets the target: nothing to tie
    sign = -1.0 if rank.maximize else 1.0
    losers = [s for s in range(len(systems)) if s != w and _gap(best, s, w) > 1e-12]
    n_cands = {s: int((scorer.codes == s).sum()) for s in range(len(systems))}

    def row(s, p, **extra):
        gap0 = _gap(best, s, w)
        return {"system": systems[s], "parameter": p.name if p else "", "label": p.label if p else "",
                "unit": p.unit if p else "", "nominal": p.nominal if p else np.nan,
                "low": p.low if p else np.nan, "high": p.high if p else np.nan,
                "helps": p.helps if p else "", "gap_nominal_pct": 100 * gap0,
                "winner": systems[w], "winner_score": sign * best[w],
                "system_score": sign * best[s] if np.isfinite(best[s]) else np.nan,
                "rank_metric": rank.metric, "candidates": n_cands.get(s, 0),
                "source": p.source if p else "", "tie_value": np.nan, "change_pct": np.nan,
                "gap_at_limit_pct": np.nan, "tie_point": -1, **extra}  # fmt: skip

    chips = {s: set(_chips_of(cands[scorer.codes == s]).tolist()) for s in losers}
    absent = [s for s in losers if n_cands[s] == 0]
    for s in absent:
        part = points[points["system"] == systems[s]]
        reason = part["reason"].mode().iat[0] if "reason" in part and len(part) else ""
        rows.append(row(s, None, verdict=f"no feasible design at nominal values ({reason}); no "
                                         "parameter here changes what fits"))  # fmt: skip
    live = [s for s in losers if n_cands[s] > 0]
    if parameters is None:
        parameters = default_parameters(
            stack, sorted(set().union(*chips.values())) if chips else []
        )
    winner_chips = set(_chips_of(cands[scorer.codes == w]).tolist())
    for p in parameters:
        concerned = [s for s in live if chips[s] & set(p.chips)]
        if not concerned:
            continue
        end = p.low if p.helps == "lower" else p.high
        if end == p.nominal:
            for s in concerned:
                rows.append(row(s, p, verdict="nominal value is already the range's end"))
            continue
        values = _grid(p.nominal, end, grid)
        b, _ = scorer(p.apply(base, float(end)))
        at_end = {s: _gap(b, s, w) for s in concerned}
        # The range's end first: a parameter that only moves the losing system's own chips
        # helps it monotonically (a lower price, hop or overhead, a higher efficiency), so a
        # gap left there means no value in range. One the winner shares (a generation's
        # efficiency) moves both, so the gap may close mid-range: walk the grid then.
        shared = bool(set(p.chips) & winner_chips)
        walk = [s for s in concerned if shared or at_end[s] <= 0]
        gaps = []
        for v in values[:-1] if walk else ():
            b, _ = scorer(p.apply(base, float(v)))
            gaps.append({s: _gap(b, s, w) for s in walk})
        gaps.append(at_end)
        geometric = p.nominal > 0 and end > 0
        for s in concerned:
            g = (
                np.array([gaps[k][s] for k in range(len(gaps))])
                if s in walk
                else np.array([at_end[s]])
            )
            hit = np.flatnonzero(g <= 0)
            if not len(hit):
                rows.append(row(s, p, verdict="no value in range", gap_at_limit_pct=100 * g[-1]))
                continue
            k = int(hit[0])
            far = float(values[k])
            near = p.nominal if k == 0 else float(values[k - 1])
            tie_point = -1
            while abs(far - near) > rel_tol * max(abs(far), 1e-300):
                mid = float(np.sqrt(near * far)) if geometric else 0.5 * (near + far)
                b, which = scorer(p.apply(base, mid))
                if _gap(b, s, w) <= 0:
                    far, tie_point = mid, int(which[s])
                else:
                    near = mid
            if tie_point < 0:
                _, which = scorer(p.apply(base, far))
                tie_point = int(which[s])
            rows.append(row(s, p, verdict="ties at", tie_value=far, tie_point=tie_point,
                            change_pct=100 * (far - p.nominal) / abs(p.nominal) if p.nominal else np.nan))  # fmt: skip
    # Every parameter of the system's own chips (not shared with the winner, which they would
    # help as much) at its helping limit at once: how far the one-at-a-time answers are from
    # any answer at all.
    for s in live:
        mine = [
            p for p in parameters if chips[s] & set(p.chips) and not set(p.chips) & winner_chips
        ]
        if not mine:
            continue
        inputs = base
        for p in mine:
            inputs = p.apply(inputs, p.low if p.helps == "lower" else p.high)
        b, which = scorer(inputs)
        g = _gap(b, s, w)
        rows.append(row(s, None, parameter="all", label="all its own chips' parameters at their limits",
                        verdict="ties" if g <= 0 else "no combination in range",
                        gap_at_limit_pct=100 * g, tie_point=int(which[s]) if g <= 0 else -1))  # fmt: skip
    table = pd.DataFrame(rows, columns=columns)
    order = {name: i for i, name in enumerate(systems)}
    table = table.assign(_gap=table["gap_nominal_pct"], _sys=table["system"].map(order))
    table = table.sort_values(["_gap", "_sys"], kind="stable").drop(columns=["_gap", "_sys"])
    table = table.reset_index(drop=True)
    table.attrs["model_calls"] = scorer.calls
    return table


__all__ = ["Parameter", "default_parameters", "what_would_change"]
