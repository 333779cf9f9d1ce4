"""Fixed-length benchmark traffic (aiconfigurator-style): the profile's fields, and what the
system model makes of it."""

import jax
import jax.numpy as jnp
import pytest

from dse.model.workload import WorkloadProfile
from dse.stack import Stack
from dse.workload import CACHE_GRID_POINTS, SessionParams
from dse.workload.fixed import fixed_length_profile
from dse.workload.profile import stack_profiles


def test_fields_describe_independent_fixed_length_requests():
    p = fixed_length_profile(4000, 500)
    assert isinstance(p, WorkloadProfile)
    for name, leaf in vars(p).items():
        assert isinstance(leaf, jax.Array) and leaf.dtype == jnp.float64, name
        assert bool(jnp.all(jnp.isfinite(leaf))), name
    assert float(p.input_tokens) == 4000 and float(p.output_tokens) == 500
    assert float(p.new_tokens) == 4000  # nothing is reused
    assert float(p.reusable_fraction) == 0.0 and float(p.prefill_past) == 0.0
    assert p.hit_curve.shape == p.cache_grid.shape == (CACHE_GRID_POINTS,)
    assert float(jnp.max(jnp.abs(p.hit_curve))) == 0.0
    assert float(p.decode_context) == 4000 + 500 / 2
    assert float(p.max_context) == 4500
    assert float(p.gap_s) == 0.0 and float(p.requests_per_session) == 1.0
    assert float(p.session_input_tokens) == 4000 and float(p.session_output_tokens) == 500
    assert float(p.agents_in_flight) == 1.0
    assert float(p.sub_agent_input_fraction) == 0.0 == float(p.sub_agent_output_fraction)
    d = SessionParams()
    expect = [d.spec_acceptance_mtp, d.spec_acceptance_draft, d.spec_acceptance_ngram]
    assert [float(x) for x in p.spec_acceptance] == pytest.approx(expect)


def test_prefix_is_an_always_resident_cached_head():
    p = fixed_length_profile(4000, 500, prefix=1000)
    assert float(p.new_tokens) == 3000 and float(p.prefill_past) == 1000
    assert float(p.reusable_fraction) == pytest.approx(0.25)
    # One hot shared prompt stays resident at any cache size and load (dse predict's serving
    # rows use the same profile).
    assert bool(jnp.all(p.hit_curve == 0.25))


def test_acceptance_follows_the_given_params_and_profiles_stack():
    params = SessionParams(spec_acceptance_mtp=0.5)
    p = fixed_length_profile(1000, 100, params=params)
    assert float(p.spec_acceptance[0]) == 0.5
    both = stack_profiles([p, fixed_length_profile(8000, 1000)])
    assert both.input_tokens.shape == (2,) and both.hit_curve.shape == (2, CACHE_GRID_POINTS)


@pytest.mark.parametrize(
    "args", [(0, 500), (4000, 0), (float("nan"), 10), (100, 10, 100), (100, 10, -1)]
)
def test_bad_lengths_are_rejected(args):
    with pytest.raises(ValueError):
        fixed_length_profile(*args)


def _rows(stack: Stack) -> list[dict]:
    h200, host = stack.hw_index["h200_sxm"], stack.host_index["x86_pcie5"]
    common = dict(
        model="qwen3-32b", system="vr200_nvl72", software="default", decode_hw=h200,
        prefill_hw=h200, host=host, ep=1, pp=1, dp=1, spec_method=0, spec_k=0,
        host_gb_per_gpu=0, storage_tb=0, storage_gbs=0, weight_bits=16, kv_bits=16,
    )  # fmt: skip
    return [
        dict(common, tp=4, decode_units=4, prefill_units=0, batch=32),  # aggregated
        dict(common, tp=4, decode_units=4, prefill_units=4, prefill_tp=1, batch=32),  # 4P1D
    ]


@pytest.fixture(scope="module")
def evaluated():
    """Two Stacks (ISL 4000 and 16000, OSL 500) on the same qwen3-32b H200 designs."""
    out = {}
    for isl in (4000, 16000):
        stack = Stack(workload=fixed_length_profile(isl, 500))
        out[isl] = stack.evaluate(_rows(stack))
    return out


def test_qwen3_32b_on_h200_evaluates_to_finite_numbers(evaluated):
    df = evaluated[4000]
    assert df["feasible"].all(), df["reason"].tolist()
    for col in ("ttft_ms", "tpot_ms", "tok_s_user", "tok_s_per_unit", "requests_s"):
        assert (df[col] > 0).all() and df[col].map(float).map(lambda v: v < 1e12).all(), col
    assert (df["hit_rate"] == 0.0).all()  # no reuse, whatever prompt_cache is
    assert (df["uncached_tokens"] == 4000).all()
    # every request is one session: sessions = rate x (TTFT + OSL x TPOT)
    latency_s = (df["ttft_ms"] + 500 * df["tpot_ms"]) / 1e3
    assert df["sessions"].to_numpy() == pytest.approx((df["requests_s"] * latency_s).to_numpy())
    assert df["units"].tolist() == [4.0, 8.0]


def test_longer_prompts_lower_throughput_and_raise_ttft(evaluated):
    short, long = evaluated[4000], evaluated[16000]
    assert (long["tok_s_per_unit"] < short["tok_s_per_unit"]).all()
    assert (long["ttft_ms"] > short["ttft_ms"]).all()
    assert (long["tpot_ms"] > short["tpot_ms"]).all()  # longer context per decode step


def test_a_length_spread_lengthens_the_decode_context_and_the_p99():
    """MLPerf DeepSeek-R1's moments: the output-weighted context is 2.06x isl + osl/2 (the
    samples' own figure, conf/dataset/mlperf-deepseek-r1.yaml), the p99 context beyond the
    mean's; prefill and everything else stays at the means."""
    fixed = fixed_length_profile(803.8, 4043.4)
    spread = fixed_length_profile(803.8, 4043.4, isl_cv=0.5047, osl_cv=1.2526, length_corr=-0.3377)
    assert float(spread.decode_context) == pytest.approx(5826.0, abs=1.0)
    assert float(fixed.decode_context) == pytest.approx(803.8 + 4043.4 / 2)
    assert float(spread.max_context) > 4 * float(fixed.max_context)
    for name in ("input_tokens", "output_tokens", "new_tokens", "prefill_past"):
        assert float(getattr(spread, name)) == float(getattr(fixed, name)), name


@pytest.mark.parametrize(
    "shape", [dict(isl_cv=-0.1), dict(osl_cv=11.0), dict(length_corr=1.5), dict(osl_cv="x")]
)
def test_impossible_length_spreads_are_refused_in_one_line(shape):
    with pytest.raises(ValueError) as e:
        fixed_length_profile(1000, 100, **shape)
    assert "\n" not in str(e.value) and next(iter(shape)) in str(e.value)
