"""Gradients of the system model: sensitivities and projected-gradient refinement.

``sensitivities`` answers "tok/s/user per extra TB/s of HBM": the Jacobian of system metrics
with respect to the continuous :class:`~dse.model.system_design.SystemDesign` fields, as a raw
derivative, an elasticity ``d ln m / d ln x = (dm/dx) x / m`` and per physical unit of the
decode chip, ``dm/dx / spec`` (a knob ``x`` scales catalog spec ``spec``, so the chip has
``spec * x`` of it; 1e-3 converts TFLOP/s to PFLOP/s). ``refine`` climbs from the best discrete
points of a search to the best nearby continuous design.

Forward mode: ~9 inputs and ~10 outputs, so ``jax.jacfwd`` pushes 9 tangents through one
evaluation. ONE compiled program (``Stack.jacobian``: ``jit(vmap(jacfwd))`` over all designs,
``dse/stack/jacobian.py``) serves both: ``sensitivities`` calls it once, ``refine`` once per
line-search step for all starts at once, so they share one compilation (~85 s on a 2-core CPU;
JAX's persistent cache, ``dse.configure``, keeps it across processes, where tracing and loading
it take ~18 s).

Numerics (why the derivative is what it is):

* The roofline uses a smooth p-norm maximum (``numerics.soft_max``) and every ``where`` guards
  both branches (``safe_div``), so tangents are finite. But the model also has kinks
  (``jnp.minimum``/``maximum``/``clip``: the prefill pool limiting the request rate, batch
  caps, hit rates clipped to [0, 1], ``where`` between aggregated/disaggregated paths). There
  JAX differentiates the branch selected at the point: the result is a ONE-SIDED derivative
  (at an exact tie of ``max`` JAX splits it equally). A central finite difference across a
  kink differs; refine's line search, which only accepts measured improvement, is robust to it.
* Request rate, hit rate and prefill load are settled by a bracketed root solve in
  ``evaluate_system`` (``system_solve._rate_root``); its derivative is the implicit one at the root
  (``system_solve._at_root``: implicit function theorem), not that of the solver's iterations.
* ``feasible`` is a step function (derivative 0 almost everywhere). At infeasible designs the
  derivatives are reported as 0 with ``feasible=False``; any non-finite tangent (never seen;
  tests check) is replaced by 0 and flagged ``finite=False``. The output never holds NaN.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..model.hypothetical import HARDWARE_KNOBS
from ..model.system_design import SYSTEM_FIELDS
from ..model.system_metrics import SESSION_FIELDS, SYSTEM_METRIC_FIELDS
from ..progress import Progress
from ..stack import Stack
from ..stack.jacobian import CONTINUOUS_FIELDS, TIER_FIELDS
from ..values import count
from .engine import Engine, Found, Problem, Unfinished
from .results import top_configs

# field -> (decode-chip catalog spec it scales or None if already physical, spec/unit, unit)
UNITS: dict[str, tuple[str | None, float, str]] = {
    "flops_scale": ("fp8_tflops", 1e-3, "PFLOP/s fp8 dense"),
    "hbm_bw_scale": ("mem_bandwidth_tbs", 1.0, "TB/s HBM bandwidth"),
    "hbm_gb_scale": ("mem_capacity_gb", 1.0, "GB HBM capacity"),
    "sram_scale": ("sram_mb", 1.0, "MB SRAM"),
    "scaleup_bw_scale": ("scaleup_bandwidth_gbs", 1.0, "GB/s scale-up bandwidth"),
    "scaleout_bw_scale": ("scaleout_bandwidth_gbit", 1.0, "Gbit/s scale-out bandwidth"),
    "host_gb_per_gpu": (None, 1.0, "GB host memory per GPU"),
    "storage_tb": (None, 1.0, "TB context storage"),
    "storage_gbs": (None, 1.0, "GB/s context-storage bandwidth"),
}
METRICS: tuple[str, ...] = (
    "tok_s_user", "tok_s_per_unit", "usd_per_mtok", "ttft_ms", "tok_s_per_mw", "usd_per_unit_hour"
)  # fmt: skip
# Metrics where less is better (refine's direction for a metric-name objective).
MINIMIZE = frozenset(
    {"ttft_ms", "tpot_ms", "restore_ms", "uncached_tokens", "units", "usd_per_hour", "power_kw",
     "usd_per_unit_hour", "capex_usd", "usd_per_mtok", "usd_per_mtok_output",
     "usd_per_mtok_uncached", "usd_per_mtok_cached", "usd_per_session", "accuracy_penalty_pct",
     *(f"{m}_{s}" for m in ("ttft_ms", "tpot_ms") for s in ("p50", "p90", "p99", "sd")),
     "prefill_ms", *SESSION_FIELDS}
)  # fmt: skip
# ASSUMPTION: knobs are honest within 0.5-2x (hypothetical.py); tier ranges are generous caps.
DEFAULT_BOUNDS = {k: (0.5, 2.0) for k in HARDWARE_KNOBS} | {
    "storage_tb": (0.0, 1000.0), "storage_gbs": (0.0, 1000.0)
}  # fmt: skip
_TINY = 1e-30


def _merit(y, jac, c, mu, beta):
    """Merit, its gradient (chain rule through the Jacobian) and the total relative violation.

    ``merit = J + beta sum log min(s, 1) - mu sum r^2`` with ``J = sum_k w_k ln y_k``
    (scale-free; w < 0 minimizes), ``s`` the relative slack of each constraint,
    ``(y - lo)/|lo|`` or ``(hi - y)/|hi|``, and ``r = max(-s, 0)`` its violation. The log
    barrier bends steps along a met constraint instead of into it (interior point); the
    quadratic penalty pulls a violated start back while the objective still steers (a pure
    restoration gradient stalled at box corners in trials). NumPy: cheap at (n, m, f).
    """
    w, lo, hi, has_lo, has_hi = c
    pos = y > _TINY
    inv = np.where(pos, 1.0 / np.where(pos, y, 1.0), 0.0)
    merit, dy = np.sum(w * np.log(np.maximum(y, _TINY)), -1), w * inv  # dy: d merit / d y
    viol = np.zeros(y.shape[0])
    for has, bound, sign in ((has_lo, lo, 1.0), (has_hi, hi, -1.0)):
        scale = np.where(np.abs(bound) > 0, np.abs(bound), 1.0)
        slack = np.where(has, sign * (y - bound) / scale, 1.0)
        inner = (slack > 0) & (slack < 1)
        r = np.maximum(-slack, 0.0)
        merit = merit + np.sum(beta * np.log(np.clip(slack, _TINY, 1.0)) * (slack > 0), -1)
        merit = merit - mu * np.sum(r**2, -1)
        ds = sign / scale  # d slack / d y
        dy = dy + (np.where(inner, beta / np.where(inner, slack, 1.0), 0.0) + 2 * mu * r) * ds
        viol = viol + np.sum(r, -1)
    return merit, np.einsum("nm,nmf->nf", dy, jac), viol


def _direction(g1, g2, x, lo, hi):
    """Ascent direction in box coordinates, max-norm 1 (0: stationary). ``g2 != 0`` is the
    gradient on the far side of a kink: then the minimum-norm point of the segment
    ``[g1, g2]`` (a two-gradient bundle, as in gradient sampling, Burke, Lewis & Overton 2005),
    which follows the kink instead of crossing it; 0 there means a Clarke-stationary point.
    Components pushing out of the box at an active bound are zeroed (projected gradient)."""

    def out(g):
        return ((x <= lo) & (g < 0)) | ((x >= hi) & (g > 0))

    g1, g2 = np.where(out(g1), 0.0, g1), np.where(out(g2), 0.0, g2)
    gap = g2 - g1
    den = np.sum(gap * gap, -1, keepdims=True)
    lam = np.clip(np.sum(gap * g2, -1, keepdims=True) / np.where(den > 0, den, 1.0), 0.0, 1.0)
    has = np.abs(g2).max(-1, keepdims=True) > 0
    g = np.where(has, lam * g1 + (1.0 - lam) * g2, g1)
    g = np.where(out(g), 0.0, g)
    norm = np.abs(g).max(-1, keepdims=True)
    scale = np.maximum(np.abs(g1).max(-1, keepdims=True), np.abs(g2).max(-1, keepdims=True))
    live = norm > 1e-9 * scale
    return np.where(live, g / np.where(live, norm, 1.0), 0.0)


def _search(stack: Stack, rows, lo, hi, metrics, c=None, mu=0.0, beta=0.0, step0=0.0, steps=0):
    """Projected gradient ascent of the merit over the box ``[lo, hi]`` (per design and field;
    ``lo == hi`` freezes a field), all designs at once; ``steps = 0``: the Jacobian at the starts.

    Each step moves ``x + t (hi - lo) d`` (``d`` from :func:`_direction`), clipped onto the
    box. It is accepted only if the design is feasible and it lowers the total constraint
    violation, or keeps it and raises the merit; then ``t`` doubles (cap 1). Rejected, ``t``
    halves and the next step retries from the same point (backtracking, one trial per step);
    if the rejected candidate's slope along ``d`` pointed back, a kink of the model (the
    one-sided derivative pointing across it, e.g. into the other branch of a ``min``) lies
    between them and the retry follows it using both gradients. Plain gradient steps stalled
    on such kink ridges: llama3.1-70b on GB200 NVL72, min $/Mtok at tok/s/user >= 300, stopped
    at 6.05 where this reaches 5.57 (best of 20,000 random points in the box: 5.64).
    The loop over steps is Python around the compiled ``Stack.jacobian`` (vmapped over all starts):
    a ``lax.fori_loop`` around it compiled in ~4.5 min against ~75 s for the kernel alone
    (2-core CPU, default XLA options), and the kernel is shared with ``sensitivities``.
    """
    n = len(rows)

    def kernel(x):
        return stack.jacobian(rows, x, metrics)

    m = len(metrics)
    c = c or (np.zeros(m), np.zeros(m), np.zeros(m), np.zeros(m, bool), np.zeros(m, bool))
    x = np.array([[float(r[k]) for k in CONTINUOUS_FIELDS] for r in rows])
    start = y, jac, feas, _ = kernel(x)
    merit, grad, viol = _merit(y, jac, c, mu, beta)
    span, t, acc = hi - lo, np.full(n, float(step0)), np.zeros(n, np.int64)
    other = np.zeros_like(x)  # the gradient across a kink found by a rejected trial
    for _ in range(steps):
        d = _direction(grad * span, other * span, x, lo, hi)
        if not ((np.abs(d).max(-1) > 0) & (t > 1e-9)).any():
            break  # every start is stationary on the box or out of step length
        xc = np.clip(x + t[:, None] * span * d, lo, hi)
        yc, jc, fc, _ = kernel(xc)
        mc, gc, vc = _merit(yc, jc, c, mu, beta)
        ok = fc & ((vc < viol - 1e-12) | ((vc <= viol + 1e-12) & (mc > merit)))
        back = ~ok & (np.sum(gc * span * d, -1) < 0)  # the candidate's slope points back
        x, grad = np.where(ok[:, None], xc, x), np.where(ok[:, None], gc, grad)
        merit, viol = np.where(ok, mc, merit), np.where(ok, vc, viol)
        other = np.where(ok[:, None], 0.0, np.where(back[:, None], gc, other))
        t = np.where(ok, np.minimum(2.0 * t, 1.0), 0.5 * t)
        acc = acc + ok
    return x, acc, start


def _check_metrics(names) -> None:
    codes = ("feasible", "reason", "bound")
    bad = [k for k in names if k not in SYSTEM_METRIC_FIELDS or k in codes]
    if bad:
        raise ValueError(f"not a continuous system metric: {bad}")


def sensitivities(
    stack: Stack, designs: list[dict[str, float]], metrics=METRICS, fields=CONTINUOUS_FIELDS
) -> pd.DataFrame:
    """One row per (design, metric, field): ``value`` of the metric, ``field_value``,
    ``derivative`` d metric / d field, ``elasticity`` (0 where metric or field is 0),
    ``per_unit`` = derivative per one ``unit`` of the decode chip's physical spec (0 where the
    chip has none of it), ``feasible``, ``finite`` (False: a non-finite tangent zeroed).
    With a sub-agent model the session's cost includes that replica, as in the search's tables
    (``Stack.jacobian``). All designs go through one compiled call (padded to a power of two,
    >= 8)."""
    metrics, fields = tuple(metrics), tuple(fields)
    _check_metrics(metrics)
    if set(fields) - set(CONTINUOUS_FIELDS):
        raise ValueError(f"fields must be among {CONTINUOUS_FIELDS}")
    x = np.array([[float(r[k]) for k in CONTINUOUS_FIELDS] for r in designs])
    _, _, (y, jac, feas, finite) = _search(stack, designs, x, x, metrics)
    hw = stack.tables.hardware
    chip = np.array([int(r["decode_hw"]) for r in designs])
    out = []
    for j, k in ((CONTINUOUS_FIELDS.index(k), k) for k in fields):
        spec, scale, unit = UNITS[k]
        phys = np.asarray(getattr(hw, spec))[chip] * scale if spec else np.ones(len(designs))
        for i, name in enumerate(metrics):
            d, v, xv = jac[:, i, j], y[:, i], x[:, j]
            ok = (v != 0) & (xv > 0)
            out.append(pd.DataFrame({
                "design": np.arange(len(designs)), "hardware": [stack.hw_names[h] for h in chip],
                "metric": name, "field": k, "value": v, "field_value": xv, "derivative": d,
                "elasticity": np.where(ok, d * xv / np.where(ok, v, 1.0), 0.0),
                "per_unit": np.where(phys > 0, d / np.where(phys > 0, phys, 1.0), 0.0),
                "unit": unit, "feasible": feas, "finite": finite[:, i, j],
            }))  # fmt: skip
    table = pd.concat(out, ignore_index=True)
    return table.sort_values(["design", "metric", "field"], kind="stable", ignore_index=True)


@dataclass(frozen=True)
class RefineResult:
    """Starts (projected onto the box) and refined designs as full SystemDesign dicts;
    ``objective_*`` is the metric for a metric-name objective, else ``sum w ln m``; both and
    ``metrics`` come from re-evaluating with the normal model (``Stack.evaluate_values``)."""

    fields: tuple[str, ...]
    starts: tuple[dict, ...]
    refined: tuple[dict, ...]
    objective_before: np.ndarray
    objective_after: np.ndarray
    metrics: pd.DataFrame  # at the refined designs
    metrics_before: pd.DataFrame  # at the starts
    iterations: np.ndarray  # accepted steps per start
    improved: np.ndarray
    constraints_met: np.ndarray


def refine(
    stack: Stack,
    starts: list[dict[str, float]],
    *,
    objective: str | Mapping[str, float] = "tok_s_per_unit",
    bounds: Mapping[str, tuple[float, float]] | None = None,
    constraints: Mapping[str, tuple[float | None, float | None]] | None = None,
    fields=HARDWARE_KNOBS,
    steps: int = 50,
    step_size: float = 0.25,
    penalty: float = 100.0,
    barrier: float = 1e-3,
) -> RefineResult:
    """Projected gradient ascent from each start at once (see :func:`_search`).

    ``objective``: a metric name (maximized, or minimized if in ``MINIMIZE``) or weights
    ``{metric: w}`` maximizing ``sum w ln metric`` (a weighted-geometric scalarization).
    ``constraints``: ``{metric: (lo, hi)}``, None = open; a start that violates them only
    accepts steps that violate less (it may give up objective for that, and may still fail:
    ``constraints_met``); one that meets them never leaves (log barrier + line search).
    ``penalty``, ``barrier``: weights of the two (see :func:`_merit`).
    ``bounds``: ``{field: (lo, hi)}`` over ``DEFAULT_BOUNDS`` (host memory: up to the host
    tier's GB per GPU). ``fields``: the free ones. ``steps``: line-search trials (model
    evaluations); ``step_size``: the first trial's move as a fraction of each box width.
    """
    weights = {objective: -1.0 if objective in MINIMIZE else 1.0} if isinstance(objective, str) \
        else dict(objective)  # fmt: skip
    constraints = dict(constraints or {})
    extra = sorted((set(weights) | set(constraints)) - set(METRICS))
    metrics = METRICS + tuple(extra)
    _check_metrics(metrics)
    if set(fields) - set(CONTINUOUS_FIELDS):
        raise ValueError(f"fields must be among {CONTINUOUS_FIELDS}")
    x = np.array([[float(r[k]) for k in CONTINUOUS_FIELDS] for r in starts])
    hosts = stack.tables.hosts
    host_cap = np.asarray(hosts.mem_capacity_gb) / np.maximum(np.asarray(hosts.gpus_per_cpu), 1.0)
    lo, hi = x.copy(), x.copy()
    for j, k in enumerate(CONTINUOUS_FIELDS):
        if k in fields:
            cap = host_cap[[int(r["host"]) for r in starts]] if k == "host_gb_per_gpu" else None
            b = (bounds or {}).get(k, DEFAULT_BOUNDS.get(k, (0.0, cap)))
            lo[:, j], hi[:, j] = b[0], b[1] if b[1] is not None else cap
    if (lo > hi).any():
        raise ValueError("a lower bound exceeds its upper bound")
    x = np.clip(x, lo, hi)
    projected = [{**r, **dict(zip(CONTINUOUS_FIELDS, map(float, xi)))} for r, xi in zip(starts, x)]
    lo_c, hi_c = zip(*(constraints.get(k, (None, None)) for k in metrics))
    c = (
        np.array([weights.get(k, 0.0) for k in metrics]),
        np.array([0.0 if a is None else float(a) for a in lo_c]),
        np.array([0.0 if b is None else float(b) for b in hi_c]),
        np.array([a is not None for a in lo_c]),
        np.array([b is not None for b in hi_c]),
    )
    xr, acc, _ = _search(stack, projected, lo, hi, metrics, c, penalty, barrier, step_size, steps)
    refined = [{**r, **dict(zip(CONTINUOUS_FIELDS, map(float, v)))} for r, v in zip(starts, xr)]
    before, after = stack.evaluate_values(projected), stack.evaluate_values(refined)

    def score(df):
        if isinstance(objective, str):
            return df[objective].to_numpy()
        return sum(w * np.log(np.maximum(df[k].to_numpy(), _TINY)) for k, w in weights.items())

    sign = -1.0 if isinstance(objective, str) and objective in MINIMIZE else 1.0
    ok = np.ones(len(starts), bool)
    for k, (a, b) in constraints.items():
        v = after[k].to_numpy()
        ok &= (v >= (-np.inf if a is None else a)) & (v <= (np.inf if b is None else b))
    return RefineResult(
        tuple(k for k in CONTINUOUS_FIELDS if k in fields), tuple(projected), tuple(refined),
        score(before), score(after), after, before, acc, sign * (score(after) - score(before)) > 0,
        np.asarray(ok, bool),
    )  # fmt: skip


@dataclass(frozen=True)
class Gradients(Engine):
    """A Pareto engine, then gradients at its frontier (``conf/search/gradient.yaml``): at up
    to ``top`` frontier points (the recommended configurations first, then the best, then
    points spread along the first objective), ``sensitivities`` of every metric to every
    continuous field and, with ``refine`` (``{objective, steps}``), projected-gradient
    refinement of the hypothetical-hardware knobs, and with ``whatif`` the value of each
    uncertain parameter at which a losing system would tie the winner at the target
    (:mod:`.whatif`). Adds the tables ``sensitivities``, ``refined`` and ``whatif``; the
    frontier is the base engine's."""

    base: Engine
    top: int
    sensitivities: bool
    refine: dict | None
    whatif: bool

    @property
    def name(self) -> str:  # the report names the engine that searched the space
        return self.base.name

    def __post_init__(self):
        if not (isinstance(self.base, Engine) and self.base.pareto):
            raise ValueError("search.base: gradients refine a frontier; give a Pareto engine "
                             "(exhaustive or optuna)")  # fmt: skip
        object.__setattr__(self, "top", count("search.top", self.top))
        if not isinstance(self.whatif, bool):
            raise ValueError(f"search.whatif={self.whatif!r}: give true or false")
        if self.refine is not None:
            if not isinstance(self.refine, Mapping):
                raise ValueError(
                    f"search.refine={self.refine!r}: give {{objective, steps}} or null"
                )
            settings = dict(self.refine)
            unknown = sorted(set(settings) - {"objective", "steps"})
            if unknown:
                moved = "; top is now search.top" if "top" in unknown else ""
                raise ValueError(f"search.refine: unknown setting(s) {unknown}{moved}; give "
                                 "objective and steps")  # fmt: skip
            missing = sorted({"objective", "steps"} - set(settings))
            if missing:
                raise ValueError(f"search.refine: missing {missing}; conf/search/gradient.yaml "
                                 "gives both")  # fmt: skip
            objective = settings["objective"]
            names = [objective] if isinstance(objective, str) else list(dict(objective))
            try:  # checked now, not after the whole search
                _check_metrics(names)
            except ValueError:
                raise ValueError(f"search.refine.objective={objective!r}: give a metric name (e.g. "
                                 "tok_s_per_unit) or weights {metric: w}") from None  # fmt: skip
            settings["steps"] = count("search.refine.steps", settings["steps"])
            object.__setattr__(self, "refine", settings)

    def ahead(self, problem: Problem) -> tuple[Callable[[], object], ...]:
        # The Jacobian program does not depend on what the search finds: an entry point
        # compiles it while the search runs (on two cores the compiles overlap).
        warm = functools.partial(problem.stack.warm_jacobian, self.top, METRICS)
        # The what-if needs nothing ahead: its candidates run the sweep's own compiled pieces.
        return (*self.base.ahead(problem), *((warm,) if self.sensitivities else ()))

    def run(self, problem: Problem, progress: Progress) -> Found:
        found = self.base.run(problem, progress)
        frontier = found.result.front_table
        frontier = frontier if frontier is not None else pd.DataFrame()
        try:
            with progress.phase("gradients (compiled once, then cached)"):
                tables = self._tables(problem, frontier)
            if self.whatif:
                with progress.phase("what would change the answer"):
                    tables["whatif"] = self._whatif(problem, found.result.points, frontier)
        except Exception as error:  # the search's own result is kept (written) all the same
            raise Unfinished(found, error) from error
        return dataclasses.replace(found, tables={**found.tables, **tables})

    def _whatif(self, problem: Problem, points, frontier: pd.DataFrame) -> pd.DataFrame:
        """:func:`.whatif.what_would_change` over every evaluated design (or, where a large
        sweep kept only its front, the frontier's)."""
        from .whatif import what_would_change

        table = points if points is not None and len(points) else frontier
        return what_would_change(problem.stack, table, problem.model, rank=problem.rank,
                                 target=problem.constraints + problem.best_where)  # fmt: skip

    def _tables(self, problem: Problem, frontier: pd.DataFrame) -> dict[str, pd.DataFrame]:
        if frontier.empty:
            return {}
        n = min(self.top, len(frontier))
        key = "point" if "point" in frontier else "trial"  # exhaustive point id / Optuna trial
        first = problem.objectives[0]
        spread = frontier.sort_values(first.metric, ascending=not first.maximize)
        spread = spread.iloc[np.linspace(0, len(spread) - 1, n).astype(int)]
        recommended, _ = top_configs(frontier, problem.rank, problem.best_where, problem.shown)
        order = [*recommended[key], *problem.best(frontier).get(key, []), *spread[key]]
        pick = frontier.set_index(key, drop=False).loc[list(dict.fromkeys(order))[:n]]
        stack = problem.stack
        model = float(stack.model_names.index(stack.catalog.model(problem.model).id))
        rows = [{**{f: float(row[f]) for f in SYSTEM_FIELDS if f != "model"}, "model": model}
                for _, row in pick.iterrows()]  # fmt: skip
        tables = {}
        if self.sensitivities:
            table = sensitivities(stack, rows)
            table.insert(1, "point", pick[key].to_numpy()[table["design"].to_numpy()])
            tables["sensitivities"] = table
        if self.refine is not None:
            bounds = {c.metric: (c.low, c.high) for c in problem.constraints}
            res = refine(stack, rows, objective=self.refine["objective"],
                         constraints=bounds, steps=self.refine["steps"])  # fmt: skip
            table = res.metrics.copy()
            for f in res.fields:
                table[f"start_{f}"] = [row[f] for row in res.starts]
                table[f] = [row[f] for row in res.refined]
            table["objective_before"], table["objective_after"] = (
                res.objective_before,
                res.objective_after,
            )
            table["improved"], table["constraints_met"] = res.improved, res.constraints_met
            tables["refined"] = table
        return tables


__all__ = [
    "CONTINUOUS_FIELDS", "DEFAULT_BOUNDS", "METRICS", "MINIMIZE", "Gradients", "RefineResult",
    "TIER_FIELDS", "UNITS", "refine", "sensitivities",
]  # fmt: skip
