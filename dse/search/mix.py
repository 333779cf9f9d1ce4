"""Hardware-mix allocation: how many units of each pool serve a demand at least cost (a MILP).

The JAX model rates one unit of a pool at a time (a decode worker, an LPX replica of whole
racks, a prefill worker); a deployment buys *integer* numbers of several kinds at once, plus
one capacity level of each cache tier. The cheapest mix is a small mixed-integer linear
program, solved exactly by HiGHS through cvxpy. :mod:`dse.search.mix_rates` builds the problem
from the model; here it is plain numbers, so a tiny one can be checked by enumeration.

Formulation (``o``: pool options, ``j``: cache configurations = one level of every tier)::

    variables  n_o in {0, 1, ..., max_units_o}          units (workers) of option o
               w_j in {0, 1},  sum_j w_j = 1            the cache configuration chosen
    minimize   sum_o c_o n_o + sum_j c_j w_j            $/h (capex amortized, power, network,
                                                        facility: dse/model/cost.py)
    s.t. decode   sum_{o decode}  r_o  n_o >= Y         output tok/s (rates at the SLA batch)
         prefill  sum_{o prefill} r_oj n_o >= U_j w_j   for every j (uncached input tok/s)
         host     sum_j G_j w_j <= sum_o g_o n_o        host GB must attach to the units' CPUs
         storage  sum_j (B_j - S_j) w_j <= 0            restore reads within tier bandwidth
         power    sum_o p_o n_o + sum_j p_j w_j <= P    kW at the wall        (optional)
         budget   sum_o k_o n_o + sum_j k_j w_j <= K    capex $               (optional)

Why one binary per *joint* configuration: the hit rate of stacked LRU tiers is
``H((C_host + C_storage) / lambda)`` (dse/model/tiers.py), not a sum of per-tier terms, so a
binary per (host, storage) pair is the exact linearization. ``U_j`` (lambda x uncached tokens
per request) and the per-unit prefill rate ``r_oj`` both depend on ``j``; the prefill rows need
no big-M because their left side is never negative, so ``U_j w_j`` switches on only the chosen
row. That is the coupling: more cache capacity -> higher hit rate -> fewer prefill units.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

CAPS = ("power", "budget", "host", "storage")
SUMS = ("usd_h", "kw", "capex_usd")  # additive per unit / per configuration


@dataclass(frozen=True)
class PoolOption:
    """One purchasable unit of a pool and what it does (all per unit)."""

    name: str
    kind: str  # "decode" (rate: output tok/s) | "prefill" (rate: uncached input tok/s)
    rate: tuple[float, ...]  # one value, or one per cache configuration (prefill)
    usd_h: float
    kw: float
    capex_usd: float
    accelerators: int = 1  # accelerators bought per unit (whole racks for SRAM-first chips)
    host_gb: float = 0.0  # host memory its CPUs can hold for the KV cache
    max_units: int | None = None
    detail: str = ""

    def rate_at(self, j: int) -> float:
        return float(self.rate[j] if len(self.rate) > 1 else self.rate[0])


@dataclass(frozen=True)
class CacheConfig:
    """One level of every cache tier, chosen together, and what it implies at the demand."""

    name: str
    uncached_tok_s: float  # prefill demand U_j: request rate x uncached tokens per request
    usd_h: float = 0.0
    kw: float = 0.0
    capex_usd: float = 0.0
    host_gb: float = 0.0  # G_j
    restore_gbs: float = 0.0  # B_j: storage reads needed at the demand
    storage_gbs: float = 0.0  # S_j: storage read bandwidth provided
    hit_rate: float = 0.0
    detail: str = ""


@dataclass(frozen=True)
class MixProblem:
    options: tuple[PoolOption, ...]
    caches: tuple[CacheConfig, ...]
    output_tok_s: float  # decode demand Y
    power_cap_kw: float | None = None
    budget_usd: float | None = None
    notes: tuple[str, ...] = ()  # how it was built: options dropped and why, assumptions

    def __post_init__(self):
        if not self.options or not self.caches:
            raise ValueError("give at least one option and one cache configuration")
        names = [o.name for o in self.options] + [c.name for c in self.caches]
        if len(set(names)) != len(names):
            raise ValueError(f"option and cache names must be unique: {names}")
        for o in self.options:
            if o.kind not in ("decode", "prefill") or len(o.rate) not in (1, len(self.caches)):
                raise ValueError(f"option {o.name!r}: kind decode|prefill, 1 or J rates")


@dataclass(frozen=True)
class MixResult:
    status: str  # "optimal" | "infeasible" | "error"
    reason: str  # one line: why not optimal, or ""
    problem: MixProblem
    workers: tuple[int, ...] = ()  # units of each option (aligned with problem.options)
    cache: int | None = None  # index of the chosen cache configuration
    usd_per_hour: float = 0.0
    capex_usd: float = 0.0
    power_kw: float = 0.0
    utilization: dict = field(default_factory=dict)  # demand or use / capacity per constraint
    binding: tuple[str, ...] = ()
    solve_s: float = 0.0

    @property
    def feasible(self) -> bool:
        return self.status == "optimal"

    def to_frame(self) -> pd.DataFrame:
        """One row per option, then the chosen cache configuration (``share`` = its hit rate).
        ``share`` of a pool option: its part of its kind's capacity, i.e. of the demand served."""
        p, j = self.problem, self.cache or 0
        n = self.workers or (0,) * len(p.options)
        cap = {k: _capacity(p, n, j, k) for k in ("decode", "prefill")}
        rows = [
            dict(option=o.name, kind=o.kind, workers=m, units=m * o.accelerators,
                 rate_per_worker=o.rate_at(j), usd_per_hour=m * o.usd_h, power_kw=m * o.kw,
                 capex_usd=m * o.capex_usd,
                 share=m * o.rate_at(j) / cap[o.kind] if cap[o.kind] > 0 else 0.0,
                 detail=o.detail)
            for o, m in zip(p.options, n)
        ]  # fmt: skip
        if self.cache is not None:
            c = p.caches[j]
            rows.append(dict(option=c.name, kind="cache", workers=1, units=0, rate_per_worker=0.0,
                             usd_per_hour=c.usd_h, power_kw=c.kw, capex_usd=c.capex_usd,
                             share=c.hit_rate, detail=c.detail))  # fmt: skip
        return pd.DataFrame(rows)

    def summary(self) -> dict:
        p = self.problem
        out = dict(status=self.status, reason=self.reason, usd_per_hour=self.usd_per_hour,
                   capex_usd=self.capex_usd, power_kw=self.power_kw,
                   output_tok_s=p.output_tok_s, solve_s=self.solve_s)  # fmt: skip
        if self.feasible:
            c = p.caches[self.cache]
            mtok_h = max(p.output_tok_s * 3600.0 / 1e6, 1e-12)
            out.update(usd_per_mtok=self.usd_per_hour / mtok_h, cache=c.name,
                       hit_rate=c.hit_rate, utilization=dict(self.utilization),
                       workers={o.name: m for o, m in zip(p.options, self.workers) if m},
                       binding=list(self.binding))  # fmt: skip
        out["notes"] = list(p.notes)
        return out


def _capacity(p: MixProblem, n, j: int, kind: str) -> float:
    return float(sum(m * o.rate_at(j) for o, m in zip(p.options, n) if o.kind == kind))


def _col(items, attr: str) -> np.ndarray:
    return np.array([float(getattr(x, attr)) for x in items])


def _model(p: MixProblem, objective: str, drop: frozenset):
    """cvxpy problem minimizing ``objective`` (a SUMS attribute) without the groups in ``drop``
    (cap names, ``max:<option>`` for a unit limit). Rows are scaled to O(1) coefficients."""
    import cvxpy as cp  # here, not at import: cvxpy costs ~1.3 s that only the MILP needs

    n_opt, n_cache = len(p.options), len(p.caches)
    n = cp.Variable(n_opt, integer=True)
    w = cp.Variable(n_cache, boolean=True)
    dec = np.array([o.kind == "decode" for o in p.options], dtype=float)
    r = np.array([[o.rate_at(j) for j in range(n_cache)] for o in p.options])
    cons = [cp.sum(w) == 1, n >= 0]
    cons += [n[i] <= o.max_units for i, o in enumerate(p.options)
             if o.max_units is not None and f"max:{o.name}" not in drop]  # fmt: skip
    y = max(p.output_tok_s, 1e-9)
    cons.append((dec * r[:, 0]) @ n / y >= p.output_tok_s / y)
    u = _col(p.caches, "uncached_tok_s")
    us = max(float(u.max()), 1e-9)
    cons += [((1 - dec) * r[:, j]) @ n / us >= u[j] / us * w[j] for j in range(n_cache)]
    if "host" not in drop and _present(p, "host"):
        g = _col(p.caches, "host_gb").max()
        cons.append(_col(p.caches, "host_gb") @ w / g <= _col(p.options, "host_gb") @ n / g)
    if "storage" not in drop and _present(p, "storage"):
        b = _col(p.caches, "restore_gbs") - _col(p.caches, "storage_gbs")
        cons.append(b @ w / np.abs(b).max() <= 0)
    for cap, attr, limit in (
        ("power", "kw", p.power_cap_kw),
        ("budget", "capex_usd", p.budget_usd),
    ):
        if cap not in drop and limit is not None:
            scale = max(limit, 1e-9)
            cons.append(
                (_col(p.options, attr) @ n + _col(p.caches, attr) @ w) / scale <= limit / scale
            )
    cost = _col(p.options, objective) @ n + _col(p.caches, objective) @ w
    return cp.Problem(cp.Minimize(cost), cons), n, w


def _solve(p: MixProblem, objective="usd_h", drop=frozenset(), time_limit_s=30.0):
    """(status, n, w) with integer arrays; status optimal | infeasible | error: <why>."""
    import cvxpy as cp

    prob, n, w = _model(p, objective, drop)
    try:  # mip_rel_gap 1e-9: prove optimality, not HiGHS's default 1e-4 gap
        prob.solve(
            solver=cp.HIGHS, mip_rel_gap=1e-9, time_limit=float(time_limit_s), output_flag=False
        )
    except cp.error.SolverError as e:
        return f"error: {e}", None, None
    if prob.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) and n.value is not None:
        return "optimal", np.rint(n.value).astype(int), np.rint(w.value).astype(int)
    if prob.status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
        return "infeasible", None, None
    return f"error: solver status {prob.status}", None, None


def _totals(p: MixProblem, n, w) -> dict[str, float]:
    return {a: float(_col(p.options, a) @ n + _col(p.caches, a) @ w) for a in SUMS}


def _present(p: MixProblem, group: str) -> bool:
    """Whether the cap ``group`` constrains ``p`` at all."""
    if group in ("power", "budget"):
        return (p.power_cap_kw if group == "power" else p.budget_usd) is not None
    if group == "host":
        return any(c.host_gb > 0 for c in p.caches)
    return any(c.restore_gbs > c.storage_gbs for c in p.caches)


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.4g}"


def _infeasible_reason(p: MixProblem, time_limit_s: float) -> str:
    """One line: the first thing that cannot be met, with the number that would be needed."""
    dec = [o for o in p.options if o.kind == "decode" and o.rate_at(0) > 0]
    pre = [o for o in p.options if o.kind == "prefill" and max(o.rate) > 0]
    if p.output_tok_s > 0 and not dec:
        return "no decode option meets the SLA (tok/s/user, TPOT); relax it or add options"
    if max(c.uncached_tok_s for c in p.caches) > 0 and not pre:
        return "no prefill option meets the TTFT SLA at any cache level; relax max_ttft_ms"
    if all(o.max_units is not None for o in dec):
        most = sum(o.rate_at(0) * o.max_units for o in dec)
        if most < p.output_tok_s:
            return (f"decode demand {p.output_tok_s:,.0f} tok/s exceeds the {most:,.0f} tok/s "
                    "that max_units of the decode options can serve")  # fmt: skip
    both = frozenset({"power", "budget"})
    if _solve(p, drop=both, time_limit_s=time_limit_s)[0] != "optimal":
        return (
            "no cache configuration meets the prefill demand within max_units, host-memory "
            "attach and storage bandwidth; add prefill options, levels or max_units"
        )
    parts = []
    for cap, attr, unit, limit in (("power", "kw", "kW", p.power_cap_kw),
                                   ("budget", "capex_usd", "$", p.budget_usd)):  # fmt: skip
        if limit is None:
            continue
        status, n, w = _solve(p, attr, both, time_limit_s)
        least = _totals(p, n, w)[attr] if status == "optimal" else float("inf")
        if least > limit * (1 + 1e-9):
            parts.append(f"{cap} cap {_num(limit)} {unit} is below the {_num(least)} {unit} that "
                         f"the least-{cap} mix meeting the demand needs")  # fmt: skip
    return "; ".join(parts) or "power cap and budget cannot both be met; relax one of them"


def solve_mix(problem: MixProblem, time_limit_s: float = 30.0) -> MixResult:
    """The least-$/h integer mix for ``problem``; infeasible gives a result with a reason.

    ``binding``: the demand rows that are tight (their slack is below the smallest rate of a
    unit in use, so no unit could be removed) and the caps (``power``, ``budget``, ``host``,
    ``storage``, ``max:<option>``) whose removal alone lowers the cost (found by re-solving)."""
    t0 = time.perf_counter()
    p = problem
    status, n, w = _solve(p, time_limit_s=time_limit_s)
    if status != "optimal":
        infeasible = status == "infeasible"
        reason = _infeasible_reason(p, time_limit_s) if infeasible else status
        return MixResult("infeasible" if infeasible else "error", reason, p,
                         solve_s=time.perf_counter() - t0)  # fmt: skip
    j = int(np.argmax(w))
    tot, c = _totals(p, n, w), p.caches[j]
    demand = {"decode": p.output_tok_s, "prefill": c.uncached_tok_s}
    util, binding = {}, []
    for kind, need in demand.items():
        cap = _capacity(p, n, j, kind)
        util[kind] = need / cap if cap > 0 else 0.0
        used = [o.rate_at(j) for o, m in zip(p.options, n) if o.kind == kind and m > 0]
        if used and cap - need < min(used):
            binding.append(kind)
    attach = float(_col(p.options, "host_gb") @ n)
    if c.host_gb > 0:
        util["host"] = c.host_gb / attach if attach > 0 else float("inf")
    if c.restore_gbs > 0:
        util["storage"] = c.restore_gbs / c.storage_gbs if c.storage_gbs > 0 else float("inf")
    if p.power_cap_kw:
        util["power"] = tot["kw"] / p.power_cap_kw
    if p.budget_usd:
        util["budget"] = tot["capex_usd"] / p.budget_usd
    at_max = [f"max:{o.name}" for o, m in zip(p.options, n)
              if o.max_units is not None and m >= o.max_units]  # fmt: skip
    for group in [g for g in CAPS if _present(p, g)] + at_max:
        s2, n2, w2 = _solve(p, drop=frozenset({group}), time_limit_s=time_limit_s)
        if s2 == "optimal" and _totals(p, n2, w2)["usd_h"] < tot["usd_h"] * (1 - 1e-9) - 1e-9:
            binding.append(group)
    return MixResult("optimal", "", p, tuple(int(x) for x in n), j, tot["usd_h"],
                     tot["capex_usd"], tot["kw"], util, tuple(binding),
                     time.perf_counter() - t0)  # fmt: skip


__all__ = ["CacheConfig", "MixProblem", "MixResult", "PoolOption", "solve_mix"]
