"""Hardware-mix MILP: optimum equals enumeration on tiny problems; caps, infeasibility, coupling;
and the real model builds a feasible mix."""

import dataclasses
import itertools
import math

import numpy as np
import pytest

from dse.search.mix import CacheConfig, MixProblem, PoolOption, solve_mix


def _check(p: MixProblem, n, j: int) -> tuple[bool, float]:
    """(every constraint holds, $/h) of ``n`` units per option with cache configuration ``j``."""
    c = p.caches[j]
    have = {k: sum(m * o.rate_at(j) for o, m in zip(p.options, n) if o.kind == k)
            for k in ("decode", "prefill")}  # fmt: skip
    total = {a: sum(m * getattr(o, a) for o, m in zip(p.options, n)) + getattr(c, a)
             for a in ("usd_h", "kw", "capex_usd")}  # fmt: skip
    ok = (
        have["decode"] >= p.output_tok_s - 1e-9
        and have["prefill"] >= c.uncached_tok_s - 1e-9
        and c.host_gb <= sum(m * o.host_gb for o, m in zip(p.options, n)) + 1e-9
        and c.restore_gbs <= c.storage_gbs + 1e-9
        and (p.power_cap_kw is None or total["kw"] <= p.power_cap_kw + 1e-9)
        and (p.budget_usd is None or total["capex_usd"] <= p.budget_usd + 1e-9)
        and all(o.max_units is None or m <= o.max_units for o, m in zip(p.options, n))
    )
    return ok, total["usd_h"]


def _brute_force(p: MixProblem):
    """Least $/h over every integer combination (each option 0..max_units) and cache choice."""
    best = (math.inf, None)
    for n in itertools.product(*(range(o.max_units + 1) for o in p.options)):
        for j in range(len(p.caches)):
            ok, usd = _check(p, n, j)
            if ok and usd < best[0]:
                best = (usd, (n, j))
    return best


def _random_problem(rng) -> MixProblem:
    def option(name, kind, rates):
        return PoolOption(
            name, kind, tuple(rates), usd_h=float(rng.uniform(2, 20)), kw=float(rng.uniform(1, 8)),
            capex_usd=float(rng.uniform(50, 500)), host_gb=float(rng.choice([0, 40, 80])),
            max_units=int(rng.integers(2, 5)),
        )  # fmt: skip

    caches = tuple(
        CacheConfig(
            f"c{j}",
            uncached_tok_s=float(u),
            usd_h=float(rng.uniform(0, 8)),
            kw=float(rng.uniform(0, 2)),
            capex_usd=float(rng.uniform(0, 200)),
            host_gb=float(h),
            restore_gbs=float(rng.uniform(0, 10)),
            storage_gbs=float(rng.choice([0.0, 8.0, 20.0])),
        )
        for j, (u, h) in enumerate([(900.0, 0.0), (400.0, 60.0), (150.0, 150.0)])
    )
    options = (
        option("dA", "decode", [rng.uniform(80, 200)]),
        option("dB", "decode", [rng.uniform(150, 400)]),
        option("pA", "prefill", rng.uniform(150, 300, size=3)),
        option("pB", "prefill", rng.uniform(250, 500, size=3)),
    )
    power = float(rng.uniform(15, 50)) if rng.random() < 0.5 else None
    budget = float(rng.uniform(900, 3000)) if rng.random() < 0.5 else None
    caps = dict(power_cap_kw=power, budget_usd=budget)
    return MixProblem(options, caches, output_tok_s=float(rng.uniform(200, 900)), **caps)


@pytest.mark.parametrize("seed", range(12))
def test_milp_optimum_equals_enumeration(seed):
    p = _random_problem(np.random.default_rng(seed))
    cost, arg = _brute_force(p)
    r = solve_mix(p)
    if arg is None:
        assert r.status == "infeasible" and r.reason
        return
    assert r.status == "optimal"
    assert r.usd_per_hour == pytest.approx(cost, rel=1e-9, abs=1e-9)
    # the MILP's own mix is feasible and costs what it reports
    assert _check(p, r.workers, r.cache) == (True, pytest.approx(cost))


def _caps_problem(**caps) -> MixProblem:
    # A: cheapest $/h per token but power-hungry and capital-heavy; B: dearer per hour, frugal.
    options = (
        PoolOption("A", "decode", (100.0,), usd_h=10.0, kw=10.0, capex_usd=1000.0, max_units=20),
        PoolOption("B", "decode", (100.0,), usd_h=12.0, kw=4.0, capex_usd=300.0, max_units=20),
        PoolOption("P", "prefill", (500.0,), usd_h=5.0, kw=2.0, capex_usd=100.0),
    )
    return MixProblem(options, (CacheConfig("none", 400.0),), output_tok_s=600.0, **caps)


def test_power_cap_and_budget_change_the_mix_and_bind():
    free = solve_mix(_caps_problem())
    assert free.workers == (6, 0, 1) and free.binding == ("decode", "prefill")
    capped = solve_mix(_caps_problem(power_cap_kw=40.0))  # 6 A would draw 62 kW
    assert capped.feasible and capped.power_kw <= 40.0 + 1e-9
    assert capped.workers[1] > 0 and capped.usd_per_hour > free.usd_per_hour
    assert "power" in capped.binding and capped.utilization["power"] <= 1.0
    budget = solve_mix(_caps_problem(budget_usd=3000.0))  # 6 A cost 6,100 $ of capex
    assert budget.feasible and budget.capex_usd <= 3000.0 and budget.workers[1] > 0
    assert "budget" in budget.binding
    loose = solve_mix(_caps_problem(power_cap_kw=1e4, budget_usd=1e9))
    assert loose.workers == free.workers and not {"power", "budget"} & set(loose.binding)


def test_infeasible_demand_gives_a_reason_not_an_exception():
    too_much = dataclasses.replace(_caps_problem(), output_tok_s=1e6)
    r = solve_mix(too_much)
    assert r.status == "infeasible" and "max_units" in r.reason and "\n" not in r.reason
    low_power = solve_mix(_caps_problem(power_cap_kw=5.0))
    assert low_power.status == "infeasible" and "power cap" in low_power.reason
    assert "26 kW" in low_power.reason  # least power: 6 B (24 kW) + 1 P (2 kW)
    frame = low_power.to_frame()
    assert (frame["workers"] == 0).all() and np.isfinite(frame.select_dtypes("number")).all().all()
    assert low_power.summary()["status"] == "infeasible"


def _coupling_problem(cache_usd_h: float) -> MixProblem:
    caches = (
        CacheConfig("none", uncached_tok_s=1000.0),
        CacheConfig("big", uncached_tok_s=300.0, usd_h=cache_usd_h, host_gb=100.0),
    )
    options = (
        PoolOption("D", "decode", (100.0,), usd_h=8.0, kw=1.0, capex_usd=10.0),
        PoolOption(
            "P", "prefill", (110.0, 100.0), usd_h=5.0, kw=1.0, capex_usd=10.0, host_gb=60.0
        ),  # fmt: skip
    )
    return MixProblem(options, caches, output_tok_s=250.0)


def test_cheaper_cache_capacity_means_fewer_prefill_units():
    cheap, dear = solve_mix(_coupling_problem(5.0)), solve_mix(_coupling_problem(60.0))
    assert cheap.problem.caches[cheap.cache].name == "big"
    assert dear.problem.caches[dear.cache].name == "none"
    assert cheap.workers[1] == 3 < dear.workers[1] == 10  # 300/100 and 1000/110 rounded up
    # host memory must attach to prefill hosts: 100 GB needs 2 units of 60 GB even if 1 did
    tight = dataclasses.replace(
        _coupling_problem(5.0),
        caches=(CacheConfig("none", 1000.0), CacheConfig("big", 50.0, usd_h=5.0, host_gb=100.0)),
    )
    r = solve_mix(tight)
    assert r.workers[1] == 2 and "host" in r.binding


@pytest.fixture(scope="module")
def stack():
    from dse.stack import Stack

    return Stack(workload="agentic_coding", sessions=32)


def test_hardware_mix_on_the_model_is_feasible_and_finite(stack):
    from dse.search.mix_rates import build_mix_problem

    p = build_mix_problem(stack, "llama3.1-70b", 0.05, storage_levels_tb=(0.0, 50.0))
    r = solve_mix(p)
    assert r.feasible, r.reason
    frame = r.to_frame()
    nums = frame.select_dtypes("number").to_numpy(dtype=float)
    assert np.isfinite(nums).all() and r.usd_per_hour > 0 and r.power_kw > 0 and r.capex_usd > 0
    kinds = set(frame.loc[frame["workers"] > 0, "kind"])
    assert kinds == {"decode", "prefill", "cache"}
    dec = frame[frame["kind"] == "decode"]
    assert (dec["workers"] * dec["rate_per_worker"]).sum() >= p.output_tok_s
    assert {"groq3_lpx", "gb200", "vr200"} <= {o.name.split()[1] for o in p.options}
    # Without caching every prompt token is prefilled: that rate is requests_s x input tokens of
    # a prefill worker the model runs at rho = 0.8 (checked against a direct evaluation).
    j0 = next(j for j, c in enumerate(p.caches) if c.hit_rate == 0.0)
    opt = next(o for o in p.options if o.kind == "prefill")
    pool = {"hardware": opt.name.split()[1], "units": 8, "tp": 8, "ep": 1}  # dense: ep 1
    direct = stack.evaluate([dict(model="llama3.1-70b", software="no_cache", system={
        "decode": dict(pool, units=8 * 1024), "prefill": pool}, batch=0)])  # fmt: skip
    isl = float(stack.profile.input_tokens)
    assert opt.rate_at(j0) == pytest.approx(float(direct["requests_s"][0]) * isl, rel=1e-6)
    # the coupling on the model's rates: dear cache capacity -> lower hit rate, more prefill
    dear = dataclasses.replace(p, caches=tuple(
        dataclasses.replace(c, usd_h=c.usd_h * 1e3 if c.hit_rate > 0 else 0.0) for c in p.caches
    ))  # fmt: skip
    r_dear = solve_mix(dear)
    pre = lambda res: sum(m for o, m in zip(p.options, res.workers) if o.kind == "prefill")  # noqa: E731
    assert r_dear.feasible and pre(r_dear) > pre(r)
    assert dear.caches[r_dear.cache].hit_rate < p.caches[r.cache].hit_rate


def test_study_constraints_bind_the_milp_or_are_refused(stack):
    """A study's percentile SLA binds the MILP's options like its own SLA does (a p99 TPOT bound
    drops decode options or moves them to smaller batches); a bound it cannot honour is one
    clear error, never silently ignored."""
    from dse.search.mix_rates import build_mix_problem
    from dse.search.objectives import parse_constraints

    base = build_mix_problem(stack, "llama3.1-70b", 0.05, storage_levels_tb=(0.0,))
    rates = {o.name: o.rate[0] for o in base.options if o.kind == "decode"}
    tight = parse_constraints({"tpot_ms_p99": {"max": 12.0}})
    bound = build_mix_problem(stack, "llama3.1-70b", 0.05, storage_levels_tb=(0.0,),
                              constraints=tight)  # fmt: skip
    bound_rates = {o.name: o.rate[0] for o in bound.options if o.kind == "decode"}
    assert bound_rates and set(bound_rates) <= set(rates)
    assert all(bound_rates[n] <= rates[n] * (1 + 1e-9) for n in bound_rates)
    assert any(bound_rates.get(n, 0.0) < rates[n] for n in rates)
    capped = build_mix_problem(stack, "llama3.1-70b", 0.05, storage_levels_tb=(0.0,),
                               constraints=parse_constraints({"power_kw": {"max": 500}}))  # fmt: skip
    assert capped.power_cap_kw == 500
    with pytest.raises(ValueError, match="cannot honour a bound on 'usd_per_mtok'"):
        build_mix_problem(stack, "llama3.1-70b", 0.05,
                          constraints=parse_constraints({"usd_per_mtok": {"max": 3}}))  # fmt: skip
