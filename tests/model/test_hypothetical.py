"""Hypothetical-hardware knobs: 1.0 is the catalog chip; scaling moves specs, price and power."""

import jax.numpy as jnp
import numpy as np
import pytest

from dse.catalog.costs import load_cost_params
from dse.model.hypothetical import hypothetical_hardware
from dse.model.system_design import make_system


@pytest.fixture(scope="module")
def stack():
    from dse.stack import Stack

    return Stack(workload="agentic_coding", sessions=16)


def test_unit_knobs_leave_the_chip_unchanged(catalog):
    hw = catalog.hardware["gb200"].hw
    out = hypothetical_hardware(hw, make_system(), load_cost_params())
    for a, b in zip(jnp.asarray([hw.price_usd, hw.tdp_w, hw.mem_bandwidth_tbs]),
                    jnp.asarray([out.price_usd, out.tdp_w, out.mem_bandwidth_tbs])):  # fmt: skip
        assert float(a) == pytest.approx(float(b))


def test_knobs_scale_specs_price_and_power(catalog):
    hw = catalog.hardware["gb200"].hw
    cost = load_cost_params()
    out = hypothetical_hardware(hw, make_system(hbm_bw_scale=2.0, flops_scale=1.5), cost)
    assert float(out.mem_bandwidth_tbs) == pytest.approx(2.0 * float(hw.mem_bandwidth_tbs))
    assert float(out.fp8_tflops) == pytest.approx(1.5 * float(hw.fp8_tflops))
    share = float(cost.hbm_bw_price_share) + 0.5 * float(cost.compute_price_share)
    assert float(out.price_usd) == pytest.approx(float(hw.price_usd) * (1 + share))
    assert float(out.tdp_w) > float(hw.tdp_w)


def test_more_hbm_bandwidth_speeds_up_memory_bound_decode(stack):
    base = dict(model="llama3.1-70b", system="gb200_nvl72", software="default", batch=8)
    df = stack.evaluate([base, {**base, "hbm_bw_scale": 1.5}])
    assert df["feasible"].all()
    assert df["tok_s_user"].iloc[1] > 1.05 * df["tok_s_user"].iloc[0]
    assert df["usd_per_unit_hour"].iloc[1] > df["usd_per_unit_hour"].iloc[0]


def test_knobs_apply_to_the_prefill_pool_only_when_it_shares_the_chip(stack):
    base = dict(model="llama3.1-70b", system="gb200_nvl72", software="default", batch=8)
    # gb200_nvl72's prefill pool is gb200 too: more FLOPs shorten TTFT.
    df = stack.evaluate([base, {**base, "flops_scale": 2.0}])
    assert df["ttft_ms"].iloc[1] < df["ttft_ms"].iloc[0]
    assert df["ttft_ms"].iloc[1] < 0.95 * df["ttft_ms"].iloc[0]
    # On its own chip (b200) the prefill pool is untouched: the same TTFT to the last digit
    # (its pool is saturated at the same utilization, so no queue moves either).
    other = {**base, "prefill_hw": stack.hw_index["b200"]}
    df = stack.evaluate([other, {**other, "flops_scale": 2.0}])
    assert np.isfinite(df["ttft_ms"]).all()
    assert df["ttft_ms"].iloc[1] == pytest.approx(df["ttft_ms"].iloc[0], rel=1e-9)


def test_system_config_rejects_a_bad_knob(stack):
    system = {"decode": {"hardware": "gb200", "units": 8, "tp": 8}, "hypothetical": {"hbm_bw": 2}}
    with pytest.raises(ValueError, match="did you mean"):
        stack.design_values("llama3.1-70b", system)
