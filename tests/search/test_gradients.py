"""Gradients of the system model: finite, signed sensibly, equal to finite differences at smooth
points; refinement improves, stays in its box and keeps constraints. Every call to the
Jacobian kernel uses at most 8 designs, so the module compiles it once."""

from pathlib import Path

import numpy as np
import pytest

from dse.model.hypothetical import HARDWARE_KNOBS
from dse.search.gradients import (
    CONTINUOUS_FIELDS,
    METRICS,
    UNITS,
    refine,
    sensitivities,
)
from dse.stack import Stack

DESIGNS = {  # name -> (model, system, overrides); default software (fp8, MTP k=3)
    "llama_gb200_b8": ("llama3.1-70b", "gb200_nvl72", {"batch": 8}),
    "llama_gb200_b1": ("llama3.1-70b", "gb200_nvl72", {"batch": 1}),
    "llama_vr200_b8": ("llama3.1-70b", "vr200_nvl72", {"batch": 8}),
    "kimi_vr200_b8": ("kimi-k2", "vr200_nvl72", {"batch": 8}),
    "kimi_gb200_b8": ("kimi-k2", "gb200_nvl72", {"batch": 8}),
    # 1 TB of fp8 weights on one GPU: infeasible
    "kimi_gb200_tp1": ("kimi-k2", "gb200_nvl72", {"tp": 1, "ep": 1}),
}


@pytest.fixture(scope="module")
def stack():
    return Stack(workload="agentic_coding", sessions=16)


@pytest.fixture(scope="module")
def designs(stack):
    return {k: stack.design_values(m, s, "default", **o) for k, (m, s, o) in DESIGNS.items()}


@pytest.fixture(scope="module")
def table(stack, designs):
    df = sensitivities(stack, list(designs.values()))
    df["name"] = [list(designs)[i] for i in df["design"]]
    return df


@pytest.fixture(scope="module")
def metrics(stack, designs):
    df = stack.evaluate_values(list(designs.values()))
    df.index = list(designs)
    return df


def test_warm_jacobian_is_the_program_sensitivities_run(stack, designs):
    # First in this module, so the warm-up (not the ``table`` fixture) prepares the program; it
    # runs in a thread as the entry point runs it, and the real call waits for it (the kernel's
    # lock, then JAX's jit cache) rather than exporting, tracing or compiling it a second time.
    import collections
    import threading

    import jax.monitoring

    traces = collections.Counter()

    def count(event, seconds, **kw):
        if event == "/jax/core/compile/jaxpr_trace_duration":
            traces[str(kw.get("fun_name"))] += 1

    jax.monitoring.register_event_duration_secs_listener(count)
    try:
        warm = threading.Thread(target=stack.warm_jacobian, args=(len(designs), METRICS))
        warm.start()
        table = sensitivities(stack, list(designs.values()))
        warm.join()
    finally:
        jax.monitoring.unregister_event_duration_listener(count)
    # exported: "flat" traced once when no artifact exists yet, "call" (the loaded program) once
    # per process; plain jit (no compile cache): "jacobian_program" once
    assert all(n <= 1 for n in traces.values()), traces
    assert traces["flat"] + traces["call"] + traces["jacobian_program"] >= 1
    assert len(table) == len(designs) * len(METRICS) * len(CONTINUOUS_FIELDS)


def test_gradients_engine_asks_for_the_jacobian_ahead(stack):
    from dse.search.engine import Problem
    from dse.search.exhaustive import Exhaustive
    from dse.search.gradients import Gradients

    base = Exhaustive(chunk=1024, keep_points=None, resume=True, checkpoint_every=1, cluster=None, workers=1)
    problem = Problem(stack, "llama3.1-70b", Path("."))
    with_sens = Gradients(base=base, top=4, sensitivities=True, refine=None, whatif=False)
    (job,) = with_sens.ahead(problem)
    assert job.func == stack.warm_jacobian and job.args == (4, METRICS)
    assert Gradients(base=base, top=4, sensitivities=False, refine=None, whatif=False).ahead(problem) == ()
    assert base.ahead(problem) == ()


def _d(table, name, metric, field, col="derivative"):
    row = table[(table.name == name) & (table.metric == metric) & (table.field == field)]
    assert len(row) == 1
    return float(row[col].iloc[0])


def test_sensitivity_table_is_complete_finite_and_flags_infeasible(table, designs, metrics):
    assert len(table) == len(designs) * len(METRICS) * len(CONTINUOUS_FIELDS)
    for col in ("derivative", "elasticity", "per_unit", "unit", "feasible", "finite"):
        assert col in table
    numeric = table[["value", "field_value", "derivative", "elasticity", "per_unit"]]
    assert np.isfinite(numeric.to_numpy()).all()
    assert table["finite"].all()  # no tangent needed the last-line replacement
    assert set(table["unit"]) == {u for _, _, u in UNITS.values()}
    assert table.groupby("name")["feasible"].first().to_dict() == metrics["feasible"].to_dict()
    bad = table[table.name == "kimi_gb200_tp1"]
    assert not bad["feasible"].any() and (bad[["derivative", "per_unit"]] == 0).all().all()


def test_more_hbm_bandwidth_speeds_up_memory_bound_decode(table, metrics):
    bound = metrics.index[(metrics["bound"] == "decode_memory") & metrics["feasible"]]
    assert len(bound) > 0
    for name in bound:
        assert _d(table, name, "tok_s_user", "hbm_bw_scale") > 0
        assert _d(table, name, "tok_s_per_unit", "hbm_bw_scale") > 0
    # small-batch decode on every feasible design: bandwidth is what tokens/s/user is made of
    assert _d(table, "llama_gb200_b1", "tok_s_user", "hbm_bw_scale") > 0


def test_more_flops_never_slows_a_user_unless_it_admits_more_load(table, metrics):
    for name in metrics.index[metrics["feasible"]]:
        d = _d(table, name, "tok_s_user", "flops_scale")
        if metrics.loc[name, "decode_batch"] > DESIGNS[name][2]["batch"] - 1e-6:
            assert d >= 0, name
        else:  # a prefill-limited disaggregated pool: faster prefill runs more sequences a step
            assert d < 0, name
        assert _d(table, name, "ttft_ms", "flops_scale") < 0  # prefill is compute-bound


def test_price_raising_knobs_raise_cost_per_accelerator_hour(table, metrics):
    for name in metrics.index[metrics["feasible"]]:
        for knob in HARDWARE_KNOBS:
            assert _d(table, name, "usd_per_unit_hour", knob) > 0, (name, knob)
        # SRAM scale buys a GPU nothing in this model, only price: $/Mtok rises
        assert _d(table, name, "usd_per_mtok", "sram_scale") > 0
        assert _d(table, name, "tok_s_user", "sram_scale") == 0


def test_per_unit_and_elasticity_follow_the_catalog(table, stack):
    spec = float(stack.catalog.hardware["gb200"].hw.mem_bandwidth_tbs)
    d = _d(table, "llama_gb200_b8", "tok_s_user", "hbm_bw_scale")
    per_tbs = _d(table, "llama_gb200_b8", "tok_s_user", "hbm_bw_scale", "per_unit")
    assert per_tbs == pytest.approx(d / spec, rel=1e-12)
    pflops = float(stack.catalog.hardware["gb200"].hw.fp8_tflops) / 1e3
    d_f = _d(table, "llama_gb200_b8", "ttft_ms", "flops_scale")
    assert _d(table, "llama_gb200_b8", "ttft_ms", "flops_scale", "per_unit") == pytest.approx(
        d_f / pflops
    )
    value = _d(table, "llama_gb200_b8", "tok_s_user", "hbm_bw_scale", "value")
    assert _d(table, "llama_gb200_b8", "tok_s_user", "hbm_bw_scale", "elasticity") == (
        pytest.approx(d / value)
    )  # at scale 1.0


def test_jacfwd_matches_central_differences_at_a_smooth_point(stack, designs):
    base, h = designs["kimi_vr200_b8"], 1e-4
    fields = ("flops_scale", "hbm_bw_scale", "scaleup_bw_scale")
    rows = [base] + [{**base, f: base[f] + s * h} for f in fields for s in (1.0, -1.0)]
    df = sensitivities(stack, rows, fields=fields)  # 7 designs: the same compiled kernel

    def value(i, metric):
        return float(df[(df.design == i) & (df.metric == metric)]["value"].iloc[0])

    for j, f in enumerate(fields):
        for metric in METRICS:
            up, down, mid = value(1 + 2 * j, metric), value(2 + 2 * j, metric), value(0, metric)
            right, left = (up - mid) / h, (mid - down) / h
            assert right == pytest.approx(left, rel=1e-2, abs=1e-6)  # smooth here
            jac = float(
                df[(df.design == 0) & (df.metric == metric) & (df.field == f)]["derivative"].iloc[0]
            )
            assert jac == pytest.approx((up - down) / (2 * h), rel=0.02, abs=1e-6), (f, metric)


def test_refine_improves_within_bounds_and_constraints(stack, designs):
    starts = [designs["llama_gb200_b8"], designs["kimi_vr200_b8"]]  # tok/s/user 326 and 210
    floor = 300.0
    before = stack.evaluate_values(starts)
    r = refine(stack, starts, objective="usd_per_mtok", constraints={"tok_s_user": (floor, None)})
    assert r.fields == HARDWARE_KNOBS
    numeric = r.metrics.select_dtypes("number").to_numpy()
    assert np.isfinite(numeric).all() and r.metrics["feasible"].all()
    assert np.isfinite(r.objective_before).all() and np.isfinite(r.objective_after).all()
    for start, out in zip(starts, r.refined):
        for k, v in out.items():
            if k in HARDWARE_KNOBS:
                assert 0.5 <= v <= 2.0
            else:
                assert v == start[k]  # only the free fields move
    # the normal model re-evaluated at the refined designs is what is reported
    again = stack.evaluate_values(list(r.refined))
    assert np.allclose(again["usd_per_mtok"], r.metrics["usd_per_mtok"])
    assert np.allclose(r.objective_after, r.metrics["usd_per_mtok"])
    # a start that met the floor: cheaper tokens, floor still met
    assert r.improved[0] and r.objective_after[0] < r.objective_before[0] and r.iterations[0] > 0
    assert r.metrics["tok_s_user"][0] >= floor and r.constraints_met[0]
    # a start below the floor: never further below it
    assert r.metrics["tok_s_user"][1] >= before["tok_s_user"][1]


def test_refine_weights_and_tier_bounds(stack, designs):
    start = designs["llama_gb200_b8"]
    cap = float(stack.catalog.host_tier("grace").gb_per_gpu)
    r = refine(
        stack, [start], objective={"tok_s_per_unit": 1.0, "usd_per_unit_hour": -1.0},
        fields=("hbm_gb_scale", "host_gb_per_gpu"), bounds={"hbm_gb_scale": (0.8, 1.2)}, steps=20,
    )  # fmt: skip
    out = r.refined[0]
    assert 0.8 <= out["hbm_gb_scale"] <= 1.2 and 0.0 <= out["host_gb_per_gpu"] <= cap
    assert out["flops_scale"] == start["flops_scale"]
    assert r.objective_after[0] >= r.objective_before[0]
    assert np.isfinite(r.metrics.select_dtypes("number").to_numpy()).all()


def test_bad_names_are_refused(stack, designs):
    with pytest.raises(ValueError, match="metric"):
        sensitivities(stack, [designs["llama_gb200_b8"]], metrics=("tok_per_user",))
    with pytest.raises(ValueError, match="fields"):
        refine(stack, [designs["llama_gb200_b8"]], fields=("tp",))
