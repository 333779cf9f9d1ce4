"""Per-unit rates for the hardware-mix MILP (:mod:`dse.search.mix`), from the JAX system model.

Every candidate pool option is measured in ONE vectorized ``Stack.evaluate_values`` call, as a
disaggregated system in which the *other* pool is made so large (``MEASURE_WORKERS`` workers)
that the pool under test sets the rate:

* **decode option** (a GPU worker, an SRAM-first replica of whole LPX racks, or the decode+FFN
  pools of a system config such as ``vr200_lpx_afd``): one row per batch in ``batches``; its
  rate is the ``output_tok_s`` of the highest-throughput batch whose ``tok_s_user`` and
  ``tpot_ms`` meet the SLA.
* **prefill option** (one worker): the model runs a prefill pool at ``PREFILL_UTILIZATION``
  (M/D/1 at rho = 0.8, dse/model/system_solve.py), so ``requests_s`` = 0.8 x the worker's request
  rate and ``ttft_ms`` includes that queue. The rate depends on the uncached tokens per request
  ``u`` (attention also runs over the cached prefix), so the worker is measured at many ``u``:
  caching off (u = input tokens) plus a sweep of context-storage sizes, with the profile's
  cache grid stretched by ``GRID_STRETCH`` so that the worker's own HBM cache holds almost
  nothing and storage alone sets the hit rate. Each row is an exact model point (u, requests/s,
  TTFT); at a cache configuration's ``u_j`` the per-request time ``1/requests_s`` and the TTFT
  are interpolated piecewise-linearly in u. Rate per unit = ``u_j * requests/s`` uncached
  tok/s, or 0 where the TTFT exceeds ``max_ttft_ms``; since it is already the rho = 0.8 rate,
  a MILP prefill utilization of 1.0 means the pool runs at rho = 0.8.

Cache configurations are all (host GB, storage TB) pairs of the levels. At the demand's request
rate lambda their hit rate is the profile's LRU curve ``H((C_host + C_storage) / lambda)``,
capacities in tokens = bytes / KV bytes per token (dse/model/tiers.py; host is the upper tier),
so ``U_j = lambda * input_tokens * (1 - H)`` and storage must read ``lambda * input_tokens *
(H - H_host) * kv_bytes`` per second, at most ``storage_gbs_per_tb`` per TB. Money and power per
unit are dse/model/cost.py with the Stack's cost parameters: decode pools at utilization 1 and
prefill at 0.8 as in the system model; SRAM-first chips are bought in whole racks
(``scaleup_domain``); host memory at ``host_dram_usd_per_gb`` (build the Stack with
``cost_overrides={"host_dram_usd_per_gb": 0}`` to count Grace/Vera LPDDR already in the rack
price as free), and no more of it than the prefill workers' hosts hold (tiers live beside the
prefill pool, dse/model/pools.py).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pandas as pd

from ..model.cost import accelerator_pool_cost, memory_tier_cost
from ..model.hypothetical import hypothetical_hardware
from ..model.reasons import REASON_TEXT, REASONS
from ..model.system_design import SYSTEM_DEFAULTS, make_system
from ..model.system_solve import PREFILL_UTILIZATION
from ..model.tiers import hit_fraction, kv_bytes_per_token
from ..progress import Progress
from ..stack.config import load_group
from ..values import number
from .engine import Engine, Found, Problem
from .mix import CacheConfig, MixProblem, MixResult, PoolOption, solve_mix

# 8-GPU TP/EP workers as in TRT-LLM's DeepSeek-R1 configs (conf/system/gb200_nvl72.yaml); an
# SRAM-first spec without tp/pp gets pp = layers, tp in SRAM_TP (dse/model/sram.py).
DEFAULT_DECODE_OPTIONS = (
    {"hardware": "gb200", "tp": 8, "ep": 8},
    {"hardware": "vr200", "tp": 8, "ep": 8},
    {"hardware": "groq3_lpx"},
)
DEFAULT_PREFILL_OPTIONS = (
    {"hardware": "gb200", "tp": 8, "ep": 8},
    {"hardware": "vr200", "tp": 8, "ep": 8},
)
DEFAULT_BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 0)  # sequences per worker; 0 = most that fit
SRAM_TP = (16, 32, 48, 64, 96, 128)  # multiples of an 8-LPU tray (conf/hardware/groq3_lpx.yaml)
# ASSUMPTION: from none to about the Grace/Vera memory of a rack (54 TB per VR NVL72,
# conf/hardware/vera.yaml) and a CMX tier up to 1 PB (conf/system/vr200_nvl72.yaml: 500 TB).
HOST_LEVELS_GB = (0.0, 2_000.0, 8_000.0, 32_000.0)
STORAGE_LEVELS_TB = (0.0, 50.0, 200.0, 1_000.0)
MEASURE_WORKERS = 1024  # the pool not under test: large enough never to bind
GRID_STRETCH = 1e6  # makes a measurement worker's own HBM cache negligible
STORAGE_SWEEP_TB = tuple(np.logspace(-2.0, 10.0, 25))
DECODE_OK = {REASON_TEXT[0.0], REASON_TEXT[REASONS["prefill_pool_too_small"]]}
PREFILL_BAD = {
    REASON_TEXT[REASONS[k]]
    for k in (
        "prefill_pool_too_small", "pool_smaller_than_worker", "prefill_tp_not_dividing_heads",
        "prefill_ep_exceeds_experts", "prefill_ep_not_dividing_tp_dp",
        "prefill_units_not_whole_workers", "needs_scaleout_network",
    )
}  # fmt: skip


def _f64(x) -> jnp.ndarray:
    return jnp.asarray(x, dtype=jnp.float64)  # strong float64 (tests run strict promotion)


def _layouts(stack, model: str, spec: dict, kind: str) -> list[dict]:
    """One option spec -> ``{name, system, overrides, software?, max_units?}`` entries (list
    values of tp/pp/ep/dp expand to one option each)."""
    spec = dict(spec)
    base = {k: spec.pop(k) for k in ("name", "software", "max_units") if k in spec}
    if "system" in spec:
        cfg = spec.pop("system")
        if kind != "decode" or set(spec) - set(SYSTEM_DEFAULTS):
            raise ValueError(
                f"{kind} option {cfg}: system= is for decode options + field overrides"
            )
        name = base.pop("name", f"decode {cfg}")
        sysd = load_group("system", cfg) if isinstance(cfg, str) else dict(cfg)
        return [dict(base, name=name, system=sysd, overrides=spec)]
    if "hardware" not in spec:
        raise ValueError(f"{kind} option {spec}: give hardware (a conf/hardware name) or system")
    entry = stack.catalog.accelerator(spec.pop("hardware"))
    arch = stack.catalog.model(model).arch
    # KV-parallel decode (kvp) is a decode-pool layout only (dse/model/layer.py).
    keys = ("tp", "pp", "ep", "dp", "kvp") if kind == "decode" else ("tp", "pp", "ep", "dp")
    grid = {k: spec.pop(k) for k in keys if k in spec}
    if entry.kind == "sram" and kind == "decode":
        grid = {"tp": SRAM_TP, "pp": int(arch.num_layers), **grid}
    if (kind == "prefill" and (spec or grid.get("pp", 1) != 1)) or set(spec) - set(SYSTEM_DEFAULTS):
        raise ValueError(f"{kind} option {entry.name}: unknown keys or pp != 1: {spec | grid}")
    lists = {k: list(v) if isinstance(v, list | tuple) else [v] for k, v in grid.items()}
    out, label = [], base.pop("name", "")
    many = math.prod(len(v) for v in lists.values()) > 1
    for combo in itertools.product(*lists.values()):
        lay = {"tp": 1, "pp": 1, "dp": 1, **{k: int(v) for k, v in zip(lists, combo)}}
        experts = float(arch.num_experts)  # EP over the tp*dp ranks, at most one expert each
        lay["ep"] = int(min(lay.get("ep", lay["tp"] * lay["dp"]), experts)) if experts else 1
        units = lay["tp"] * lay["pp"] * lay["dp"]
        auto = f"{kind} {entry.name} " + " ".join(
            f"{k}{v}" for k, v in lay.items() if v > 1 or k == "tp"
        )
        if entry.kind == "sram":
            auto += f" ({math.ceil(units / float(entry.hw.scaleup_domain))} racks)"
        name = f"{label} {auto}" if label and many else label or auto
        pool = {"hardware": entry.name, "units": units, **lay}
        if kind == "prefill":
            del pool["pp"]
        out.append(dict(base, name=name, system={kind: pool}, overrides=dict(spec)))
    return out


def _pool_cost(stack, v: dict, hw_field: str, units: float, util: float) -> np.ndarray:
    """(usd_h, kW, capex $, units billed) of ``units`` accelerators of ``v[hw_field]``: whole
    racks for SRAM-first chips (sold only as racks, conf/hardware/groq3_lpx.yaml); the design's
    hypothetical-hardware knobs apply to the decode type, as in dse/model/system_batched.py."""
    entry = stack.catalog.hardware[stack.hw_names[int(v[hw_field])]]
    hw, domain = entry.hw, float(entry.hw.scaleup_domain)
    units = math.ceil(units / domain - 1e-9) * domain if entry.kind == "sram" else units
    if v[hw_field] == v["decode_hw"]:
        hw = hypothetical_hardware(hw, make_system(**v), stack.cost)
    c = accelerator_pool_cost(hw, _f64(units), _f64(util), stack.cost)
    capex = units * (float(hw.price_usd) + float(stack.cost.network_usd_per_accelerator))
    return np.array([float(c.total_usd_h), float(c.power_w) / 1e3, capex, units])


def _rows(stack, model, dec, pre, software, batches) -> tuple[list[dict], list[tuple]]:
    """Measurement rows (SystemDesign values) and their owner ``(kind, option index)``."""
    ref = pre[0]["system"]["prefill"]
    rows, owner = [], []
    for i, e in enumerate(dec):
        sysd = {"prefill": dict(ref), **e["system"]}
        sw = e.get("software", software)
        e["values"] = v = stack.design_values(model, sysd, sw, **e["overrides"])
        big = v["prefill_tp"] * v["prefill_dp"] * MEASURE_WORKERS
        for b in batches:
            tiers = dict(host_gb_per_gpu=0.0, storage_tb=0.0, storage_gbs=0.0)
            rows.append(dict(v, batch=float(b), prefill_units=big, **tiers))
            owner.append(("decode", i))
    for i, e in enumerate(pre):
        pool = e["system"]["prefill"]
        sysd = {"decode": dict(pool, pp=1, units=pool["units"] * MEASURE_WORKERS), "prefill": pool}
        e["values"] = v = stack.design_values(model, sysd, e.get("software", software), batch=0.0)
        sweep = STORAGE_SWEEP_TB if v["prompt_cache"] > 0 else ()
        for cache, tb in [(0.0, 0.0)] + [(1.0, s) for s in sweep]:
            rows.append(dict(v, prompt_cache=cache, host_gb_per_gpu=0.0, storage_tb=float(tb),
                             storage_gbs=1e9 if tb else 0.0))  # fmt: skip
            owner.append(("prefill", i))
    return rows, owner


def _caches(stack, model, v, lam, host_levels_gb, storage_levels_tb):
    """Every (host, storage) level pair at ``lam`` requests/s: configurations and the uncached
    tokens per request each leaves."""
    prof, c = stack.profile, stack.cost
    isl = float(prof.input_tokens)
    arch = stack.catalog.model(model).arch
    kvb = float(kv_bytes_per_token(arch, _f64(v["kv_bits"]), _f64(isl)))
    on = float(v["prompt_cache"] > 0)

    def hit(tokens: float) -> float:
        x = _f64(tokens / max(lam, 1e-12))
        return on * float(hit_fraction(prof.cache_grid, prof.hit_curve, x))

    out, uncached = [], []
    for h, s in itertools.product(map(float, host_levels_gb), map(float, storage_levels_tb)):
        h_host, h_all = hit(h * 1e9 / kvb), hit((h * 1e9 + s * 1e12) / kvb)
        u = min(max(isl * (1.0 - h_all), 1.0), isl)
        uncached.append(u)
        need = lam * (h_all - h_host) * isl * kvb / 1e9
        t = memory_tier_cost(_f64(h), _f64(s), c)
        capex = h * float(c.host_dram_usd_per_gb) + s * float(c.storage_usd_per_tb)
        out.append(CacheConfig(
            f"host {h:,.0f} GB + storage {s:,.0f} TB", lam * u, float(t.total_usd_h),
            float(t.power_w) / 1e3, capex, h, need, s * float(c.storage_gbs_per_tb), h_all,
            f"hit {h_all:.3f}, {u:,.0f} uncached tokens/request, storage reads {need:,.1f} GB/s",
        ))  # fmt: skip
    return out, np.array(uncached)


# Study constraints the MILP honours: per decode option (its SLA on interactivity and TPOT,
# mean or percentile), per prefill option (TTFT, at each cache level's uncached tokens), and
# on the whole mix (capex as the budget, power as the cap).
DECODE_BOUNDED = ("tok_s_user", "tok_s_user_p99", "tpot_ms", "tpot_ms_p50", "tpot_ms_p90",
                  "tpot_ms_p99", "tpot_ms_sd")  # fmt: skip
PREFILL_BOUNDED = ("ttft_ms", "ttft_ms_p50", "ttft_ms_p90", "ttft_ms_p99")
MILP_CONSTRAINTS = (*DECODE_BOUNDED, *PREFILL_BOUNDED, "capex_usd (max)", "power_kw (max)")


def _split_constraints(constraints, power_cap_kw, budget_usd):
    """(decode bounds, prefill bounds, power cap, budget) from a study's constraints; one clear
    line for a constraint the MILP cannot honour (it would otherwise be silently ignored)."""
    decode, prefill = [], []
    for c in constraints:
        if c.metric in DECODE_BOUNDED:
            decode.append(c)
        elif c.metric in PREFILL_BOUNDED:
            prefill.append(c)
        elif c.metric == "capex_usd" and c.low is None:
            budget_usd = c.high if budget_usd is None else min(budget_usd, c.high)
        elif c.metric == "power_kw" and c.low is None:
            power_cap_kw = c.high if power_cap_kw is None else min(power_cap_kw, c.high)
        else:
            raise ValueError(
                f"constraints: search=milp cannot honour a bound on {c.metric!r} (it sizes pools, "
                f"not designs); it honours {', '.join(MILP_CONSTRAINTS)}, and search.min_tok_s_user"
                ", search.max_ttft_ms: move the bound there or use another engine"
            )
    return tuple(decode), tuple(prefill), power_cap_kw, budget_usd


def _within(frame: pd.DataFrame, bounds) -> pd.Series:
    ok = pd.Series(True, index=frame.index)
    for c in bounds:
        if c.low is not None:
            ok &= frame[c.metric] >= c.low
        if c.high is not None:
            ok &= frame[c.metric] <= c.high
    return ok


def build_mix_problem(
    stack, model: str, demand_sessions_s: float, *, decode_options=DEFAULT_DECODE_OPTIONS,
    prefill_options=DEFAULT_PREFILL_OPTIONS, host_levels_gb=HOST_LEVELS_GB,
    storage_levels_tb=STORAGE_LEVELS_TB, min_tok_s_user: float = 50.0,
    max_tpot_ms: float | None = None, max_ttft_ms: float = 3000.0,
    power_cap_kw: float | None = None, budget_usd: float | None = None,
    software: str | dict = "default", batches=DEFAULT_BATCHES, constraints=(),
) -> MixProblem:  # fmt: skip
    """The MILP for ``demand_sessions_s`` sessions/s of the Stack's workload on ``model``: each
    session brings ``requests_per_session`` requests of the profile's mean input/output tokens.
    ``max_tpot_ms`` defaults to ``1000 / min_tok_s_user``. ``constraints``: a study's
    (``objectives.Constraint``), each honoured where the MILP can (``MILP_CONSTRAINTS``);
    any other is refused. Options dropped (infeasible, or no batch meets the SLA) are listed in
    ``notes``."""
    decode_bounds, prefill_bounds, power_cap_kw, budget_usd = _split_constraints(
        constraints, power_cap_kw, budget_usd
    )
    if stack.sub_profile is not None:
        raise ValueError("hardware_mix sizes one model's pools; this workload runs sub-agents on "
                         "another model (sub_agent_model)")  # fmt: skip
    if not (math.isfinite(demand_sessions_s) and demand_sessions_s >= 0):
        raise ValueError(f"demand_sessions_s={demand_sessions_s!r} must be a finite number >= 0")
    if not prefill_options or not decode_options:
        raise ValueError("give at least one decode and one prefill option")
    prof = stack.profile
    lam = demand_sessions_s * float(prof.requests_per_session)  # requests/s
    max_tpot = 1e3 / min_tok_s_user if max_tpot_ms is None else max_tpot_ms
    dec = [e for s in decode_options for e in _layouts(stack, model, s, "decode")]
    pre = [e for s in prefill_options for e in _layouts(stack, model, s, "prefill")]
    rows, owner = _rows(stack, model, dec, pre, software, batches)
    stretched = eqx.tree_at(lambda q: q.cache_grid, prof, prof.cache_grid * GRID_STRETCH)
    df = stack.evaluate_values(rows, profile=stretched)  # the one vectorized model call
    df["kind"], df["option"] = [k for k, _ in owner], [i for _, i in owner]
    caches, u = _caches(stack, model, pre[0]["values"], lam, host_levels_gb, storage_levels_tb)

    notes, options = [], []
    for i, e in enumerate(dec):
        d, v = df[(df["kind"] == "decode") & (df["option"] == i)], e["values"]
        ok = d["reason"].isin(DECODE_OK) & (d["bound"] != "prefill_pool") & (d["output_tok_s"] > 0)
        sla = ok & (d["tok_s_user"] >= min_tok_s_user) & (d["tpot_ms"] <= max_tpot)
        sla &= _within(d, decode_bounds)
        if not sla.any():
            best_user = d.loc[ok, "tok_s_user"].max() if ok.any() else 0.0
            why = f"at most {best_user:.0f} tok/s/user" if ok.any() else d["reason"].iloc[0]
            notes.append(f"decode option {e['name']!r} dropped: {why}")
            continue
        best = d.loc[d[sla]["output_tok_s"].idxmax()]
        cost = _pool_cost(stack, v, "decode_hw", v["decode_units"], 1.0)
        if v["ffn_units"] > 0:  # attention-FFN disaggregation: the FFN pool is part of the unit
            cost = cost + _pool_cost(stack, v, "ffn_hw", v["ffn_units"], 1.0)
        options.append(PoolOption(
            e["name"], "decode", (float(best["output_tok_s"]),), *map(float, cost[:3]),
            int(cost[3]), 0.0, e.get("max_units"),
            f"batch {best['decode_batch']:.1f}, {best['tok_s_user']:.0f} tok/s/user, "
            f"TPOT {best['tpot_ms']:.2f} ms"))  # fmt: skip
    for i, e in enumerate(pre):
        d, v = df[(df["kind"] == "prefill") & (df["option"] == i)], e["values"]
        ok = (d["bound"] == "prefill_pool") & ~d["reason"].isin(PREFILL_BAD) & (d["requests_s"] > 0)
        if not ok.any():
            notes.append(f"prefill option {e['name']!r} dropped: {d['reason'].iloc[0]}")
            continue
        pts = d[ok].sort_values("uncached_tokens").drop_duplicates("uncached_tokens")
        us = pts["uncached_tokens"].to_numpy()
        ttft = np.interp(u, us, pts["ttft_ms"].to_numpy())
        meets_sla = ttft <= max_ttft_ms
        for c in prefill_bounds:  # the study's TTFT bounds at each cache level's uncached tokens
            value = np.interp(u, us, pts[c.metric].to_numpy())
            meets_sla &= (c.low is None or value >= c.low) & (c.high is None or value <= c.high)
        rate = np.where(meets_sla, u / np.interp(u, us, 1.0 / pts["requests_s"]), 0.0)
        worker = v["prefill_tp"] * v["prefill_dp"]
        host = stack.catalog.host_tier(stack.host_names[int(v["host"])])
        cost = _pool_cost(stack, v, "prefill_hw", worker, PREFILL_UTILIZATION)
        options.append(PoolOption(
            e["name"], "prefill", tuple(map(float, rate)), *map(float, cost[:3]), int(cost[3]),
            worker * float(host.gb_per_gpu), e.get("max_units"),
            f"{len(pts)} model points, u {us.min():,.0f}-{us.max():,.0f} tokens; "
            f"TTFT {ttft.min():,.0f}-{ttft.max():,.0f} ms at rho {PREFILL_UTILIZATION}",
        ))  # fmt: skip
    y = lam * float(prof.output_tokens)
    notes.append(
        f"demand {demand_sessions_s:g} sessions/s = {lam:,.2f} requests/s, {y:,.0f} output "
        f"tok/s; SLA >= {min_tok_s_user:g} tok/s/user, TPOT <= {max_tpot:g} ms, TTFT <= "
        f"{max_ttft_ms:g} ms; the prefill pool's own HBM cache is not counted"
    )
    return MixProblem(tuple(options), tuple(caches), y, power_cap_kw, budget_usd, tuple(notes))


def hardware_mix(stack, model: str, demand_sessions_s: float, *, time_limit_s: float = 30.0,
                 progress: Progress | None = None, **options) -> MixResult:  # fmt: skip
    """Least-$/h mix of pools and cache levels serving ``demand_sessions_s`` sessions/s.

    Keyword options (all optional; what ``conf/search/milp.yaml`` may set):
    ``decode_options`` / ``prefill_options``: lists of specs ``{hardware, tp, pp, ep, dp}``
    (list values expand to one option each; prefill has no pp) or, for decode, ``{system:
    <conf/system name>, <SystemDesign field>: value}`` (its decode + FFN pools are one unit),
    each with optional ``name``, ``software``, ``max_units``; ``host_levels_gb``,
    ``storage_levels_tb``, ``min_tok_s_user``, ``max_tpot_ms``, ``max_ttft_ms``,
    ``power_cap_kw``, ``budget_usd``, ``software`` (conf/software name or mapping),
    ``batches``, ``constraints`` (a study's, see ``build_mix_problem``), ``time_limit_s`` (HiGHS,
    per solve). ``progress`` (:mod:`dse.progress`):
    the model evaluation and the solve show as phases."""
    progress = progress if progress is not None else Progress()
    with progress.phase("evaluating the pool options (the first run compiles the model)"):
        problem = build_mix_problem(stack, model, demand_sessions_s, **options)
    with progress.phase("solving the MILP (HiGHS)"):
        return solve_mix(problem, time_limit_s=time_limit_s)


@dataclass(frozen=True)
class HardwareMix(Engine):
    """The least-cost hardware mix for a demand (``conf/search/milp.yaml``): not a frontier
    over a space but one answer, the ``mix`` table. Settings are :func:`hardware_mix`'s;
    ``decode_options``/``prefill_options``/``batches``/``max_tpot_ms`` null: the built-in
    options (:data:`DEFAULT_DECODE_OPTIONS`, ...) and ``1000 / min_tok_s_user``."""

    name: ClassVar[str] = "milp"
    pareto: ClassVar[bool] = False
    demand_sessions_s: float
    min_tok_s_user: float
    max_tpot_ms: float | None
    max_ttft_ms: float
    power_cap_kw: float | None
    budget_usd: float | None
    host_levels_gb: tuple
    storage_levels_tb: tuple
    decode_options: tuple | None
    prefill_options: tuple | None
    batches: tuple | None
    software: str | dict
    time_limit_s: float

    def __post_init__(self):
        if self.demand_sessions_s is None:
            raise ValueError(
                "search.demand_sessions_s: give the demand (agent sessions per second)"
            )
        for key in ("demand_sessions_s", "min_tok_s_user", "max_tpot_ms", "max_ttft_ms",
                    "power_cap_kw", "budget_usd", "time_limit_s"):  # fmt: skip
            value = getattr(self, key)
            if value is not None:
                object.__setattr__(self, key, number(f"search.{key}", value))
        if self.min_tok_s_user <= 0 and self.max_tpot_ms is None:  # the TPOT bound is 1000/it
            raise ValueError(f"search.min_tok_s_user={self.min_tok_s_user:g}: give a rate > 0 "
                             "or set search.max_tpot_ms")  # fmt: skip

    def run(self, problem: Problem, progress: Progress) -> Found:
        options = {
            "min_tok_s_user": self.min_tok_s_user, "max_tpot_ms": self.max_tpot_ms,
            "max_ttft_ms": self.max_ttft_ms, "power_cap_kw": self.power_cap_kw,
            "budget_usd": self.budget_usd, "host_levels_gb": self.host_levels_gb,
            "storage_levels_tb": self.storage_levels_tb, "software": self.software,
        }  # fmt: skip
        for key in ("decode_options", "prefill_options", "batches"):  # null: the built-in lists
            if getattr(self, key) is not None:
                options[key] = getattr(self, key)
        result = hardware_mix(problem.stack, problem.model, self.demand_sessions_s,
                              time_limit_s=self.time_limit_s, progress=progress,
                              constraints=problem.constraints, **options)  # fmt: skip
        table = result.to_frame()
        return Found(None, {"mix": table}, result.summary(), {"mix": result}, answer=table)


__all__ = ["HardwareMix", "build_mix_problem", "hardware_mix"]
