"""The whole-stack system model: finite outputs, tier behaviour, pools, AFD, SRAM, economics."""

import numpy as np
import pytest

from dse.model.system_metrics import SYSTEM_METRIC_FIELDS
from dse.stack import Stack

KIMI = "kimi-k2"


@pytest.fixture(scope="module")
def stack():
    return Stack(workload="agentic_coding", sessions=32)


def _eval(stack, rows):
    return stack.evaluate(rows)


def test_every_metric_finite_over_random_systems(stack):
    rng = np.random.default_rng(0)
    systems = ["gb200_nvl72", "gb300_nvl72", "vr200_nvl72", "vr200_lpx_afd", "vr200_lpx_decode"]
    rows = []
    for _ in range(120):
        rows.append(
            dict(
                model=str(rng.choice([KIMI, "llama3.1-70b", "deepseek-r1", "qwen3-32b"])),
                system=str(rng.choice(systems)),
                software=str(rng.choice(["default", "nvfp4_mtp", "no_cache"])),
                batch=float(rng.choice([0, 1, 4, 32, 256])),
                host_gb_per_gpu=float(rng.uniform(0, 200)),
                storage_tb=float(rng.uniform(0, 1000)),
                spec_method=float(rng.integers(0, 4)),
                spec_k=float(rng.integers(0, 5)),
            )
        )
    df = _eval(stack, rows)
    numeric = [f for f in SYSTEM_METRIC_FIELDS if f not in ("feasible", "reason", "bound")]
    assert np.isfinite(df[numeric].to_numpy()).all()
    assert (df.loc[~df["feasible"], "reason"].str.len() > 0).all()
    assert (df.loc[df["feasible"], "reason"] == "").all()


def test_more_cache_capacity_never_lowers_the_hit_rate(stack):
    base = dict(model=KIMI, system="vr200_nvl72", software="default", storage_tb=0.0)
    rows = [dict(base, host_gb_per_gpu=g) for g in (0, 1, 4, 16, 64, 256, 700)]
    rows += [dict(base, host_gb_per_gpu=0, storage_tb=t, storage_gbs=400) for t in (1, 10, 100)]
    hits = _eval(stack, rows)["hit_rate"].to_numpy()
    assert (np.diff(hits[:7]) >= -1e-12).all() and (np.diff(hits[7:]) >= -1e-12).all()
    assert hits[-1] <= float(stack.profile.reusable_fraction) + 1e-9
    assert hits[0] < hits[6]  # HBM alone holds less than HBM + host for this workload


def test_prompt_caching_economics_infrastructure_view(stack):
    # The seed: without prompt caching the input cost would be ~6x higher. On owned hardware
    # the prefill-pool busy time per request (GPU-seconds, which is what input processing
    # costs) is several times higher without caching; the factor exceeds the 10x fewer tokens
    # when long prefixes make attention per token dearer, and falls short of it when small
    # appends run inefficient GEMMs.
    rows = [
        dict(
            model=KIMI,
            system="vr200_nvl72",
            software=sw,
            batch=16,
            prefill_units=40,
            decode_units=32,
        )
        for sw in ("default", "no_cache")
    ]
    df = _eval(stack, rows)
    per_request = (df["prefill_utilization"] / df["requests_s"]).to_numpy()
    assert df["hit_rate"].iloc[1] == 0.0
    assert df["uncached_tokens"].iloc[1] == pytest.approx(float(stack.profile.input_tokens))
    assert 4.0 <= per_request[1] / per_request[0] <= 20.0


def test_heterogeneous_disaggregation_and_rate_matching(stack):
    # prefill on H200, decode on B200: more prefill units lift throughput while prefill binds
    rows = [
        dict(
            model="llama3.1-70b", system="gb200_nvl72", software="default", batch=32,
            prefill_hw=stack.hw_index["h200_sxm"], decode_hw=stack.hw_index["b200"],
            prefill_units=p, decode_units=16,
        )
        for p in (8, 16, 32, 64)
    ]  # fmt: skip
    df = _eval(stack, rows)
    thr = df["output_tok_s"].to_numpy()
    assert df["feasible"].all()
    assert (np.diff(thr) >= -1e-9).all() and thr[-1] > thr[0]
    assert df["bound"].iloc[0] == "prefill_pool"


def test_attention_ffn_disaggregation_needs_ffn_capacity(stack):
    rows = [
        dict(model=KIMI, system="vr200_lpx_afd", software="nvfp4_mtp", batch=4),
        dict(model=KIMI, system="vr200_lpx_afd", software="nvfp4_mtp", batch=4, ffn_units=256),
        dict(model=KIMI, system="vr200_lpx_afd", software="nvfp4_mtp", batch=4, prefill_units=0),
    ]
    df = _eval(stack, rows)
    assert df["feasible"].iloc[0]
    assert "FFN pool" in df["reason"].iloc[1]
    assert "prefill pool" in df["reason"].iloc[2]


def test_long_context_must_fit_the_decode_pool(stack):
    # Kimi-K2 on SRAM-only LPX decode: MLA KV replicated over 48-way TP leaves no room for one
    # agentic context, so the design is infeasible and says why.
    df = _eval(stack, [dict(model=KIMI, system="vr200_lpx_decode", software="nvfp4_mtp", batch=1)])
    assert not df["feasible"].iloc[0] and "KV" in df["reason"].iloc[0]


def test_cost_and_power_scale_with_units(stack):
    rows = [
        dict(model="llama3.1-70b", system="vr200_nvl72", software="default", decode_units=u)
        for u in (8, 16, 32)
    ]
    df = _eval(stack, rows)
    assert (np.diff(df["usd_per_hour"].to_numpy()) > 0).all()
    assert (np.diff(df["power_kw"].to_numpy()) > 0).all()
    assert (df["usd_per_mtok"] > 0).all() and (df["tok_s_per_mw"] > 0).all()


def test_sub_agents_on_a_smaller_model_cost_less_per_session(tmp_path, monkeypatch):
    import shutil

    import yaml

    from dse.catalog import conf_dir

    row = dict(model=KIMI, system="vr200_nvl72", software="default", batch=8, prefill_units=32)
    same = Stack(workload="agentic_coding", sessions=32).evaluate([row])
    root = tmp_path / "conf"
    shutil.copytree(conf_dir(), root)
    path = root / "workload" / "agentic_coding.yaml"
    data = yaml.safe_load(path.read_text())
    data["sub_agent_model"] = "llama3.1-8b"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("DSE_CONF", str(root))
    from dse.catalog import load_catalog

    load_catalog.cache_clear()
    try:
        mixed = Stack(workload="agentic_coding", sessions=32)
    finally:
        load_catalog.cache_clear()
    assert mixed.sub_model == "meta-llama/Llama-3.1-8B-Instruct"
    df = mixed.evaluate([row])
    assert df["sub_feasible"].iloc[0] and df["feasible"].iloc[0]
    # sub-agent calls are most of the requests: a smaller model for them lowers the session cost
    assert df["usd_per_session"].iloc[0] < same["usd_per_session"].iloc[0]
    assert float(mixed.sub_profile.input_tokens) < float(mixed.profile.input_tokens)
    # Sub-agent calls are priced at the 8B replica's (faster) latencies: the main agent waits
    # less on its fan-outs; its own calls are unchanged.
    assert df["session_fanout_minutes"].iloc[0] < same["session_fanout_minutes"].iloc[0]
    assert df["session_minutes"].iloc[0] < same["session_minutes"].iloc[0]
    # The Jacobian path takes those values from the same rule and flags their derivatives. Its
    # compiled program is checked against finite differences in tests/model/test_gradients.py;
    # here a stand-in (no compile: values 0, derivatives 1) shows the rule Stack.jacobian
    # applies around it.
    import dse.stack.api as api
    from dse.stack.jacobian import CONTINUOUS_FIELDS

    def program(tables, eff, rt, cost, profile, designs, x, metrics):
        size, shape = len(np.asarray(x)), (len(np.asarray(x)), len(metrics), len(CONTINUOUS_FIELDS))
        return (
            np.zeros((size, len(metrics))),
            np.ones(shape),
            np.ones(size, bool),
            np.ones(shape, bool),
        )

    monkeypatch.setattr(api, "Kernel", lambda name, fn, **kw: lambda *a: tuple(fn(*a)))
    monkeypatch.setattr(api, "jacobian_batch", program)
    monkeypatch.setattr(mixed, "_jacobians", {})
    values = mixed.design_values(KIMI, "vr200_nvl72", "default", batch=8, prefill_units=32)
    x = np.array([[values[k] for k in CONTINUOUS_FIELDS]])
    y, jac, _, finite = mixed.jacobian([values], x, ("session_minutes", "usd_per_session"))
    assert y[0, 0] == pytest.approx(df["session_minutes"].iloc[0], rel=1e-9)
    assert not finite[0, 0].any() and finite[0, 1].all()
    assert (jac[0, 0] == 0.0).all() and (jac[0, 1] == 2.0).all()  # session: none; cost: both


def test_system_metrics_are_differentiable(stack):
    """Sensitivities through the whole stack: throughput per accelerator rises with the decode
    GPU's HBM bandwidth; $/Mtok falls with it; both finite."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from dse.model.system_batched import evaluate_system_indexed
    from dse.model.system_design import system_design

    cal = stack.calibration
    vals = stack.design_values(KIMI, "vr200_nvl72", "default", batch=8, prefill_units=40)
    sd = system_design(vals)

    i = stack.hw_index["vr200"]

    def objectives(bandwidth_tbs, host_gb):
        hw = stack.tables.hardware
        hw = eqx.tree_at(
            lambda h: h.mem_bandwidth_tbs, hw, hw.mem_bandwidth_tbs.at[i].set(bandwidth_tbs)
        )
        tables = eqx.tree_at(lambda t: t.hardware, stack.tables, hw)
        design = eqx.tree_at(lambda d: d.host_gb_per_gpu, sd, host_gb)
        m = evaluate_system_indexed(
            tables, cal.efficiency, cal.runtime, stack.cost, stack.profile, design
        )
        return jnp.stack([m.tok_s_per_unit, m.usd_per_mtok, m.hit_rate])

    # forward mode: one pass with tangents (cheap to compile, two inputs)
    jac = jax.jit(jax.jacfwd(objectives, argnums=(0, 1)))(jnp.asarray(22.0), jnp.asarray(4.0))
    d_bw, d_host = (np.asarray(j) for j in jac)
    assert np.isfinite(d_bw).all() and np.isfinite(d_host).all()
    assert d_bw[0] > 0 and d_bw[1] < 0  # more HBM bandwidth: more tokens, cheaper tokens
    assert d_host[2] >= 0  # more host memory never lowers the hit rate


def test_catalog_indices_are_int32_and_a_fraction_is_refused():
    from dse.model.system_design import INDEX_FIELDS, SYSTEM_DEFAULTS, system_design

    sd = system_design(SYSTEM_DEFAULTS)
    assert all(np.asarray(getattr(sd, f)).dtype == np.int32 for f in INDEX_FIELDS)
    assert np.asarray(sd.tp).dtype == np.float64 and np.asarray(sd.framework).dtype == np.float64
    with pytest.raises(ValueError, match="decode_hw=.*catalog index"):
        system_design({**SYSTEM_DEFAULTS, "decode_hw": 1.5})
