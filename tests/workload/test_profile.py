"""WorkloadProfile: finite float64 leaves, internally consistent, stackable and vmappable."""

import os

import jax
import jax.numpy as jnp
import pytest

from dse.model.session_time import (
    CHAIN_SLOTS,
    COEFFICIENTS,
    FANOUT_SLOTS,
    SESSION_SLOTS,
)
from dse.model.workload import WorkloadProfile
from dse.workload import CACHE_GRID_POINTS, infinite_hit_rate, load_mooncake, trace_dir
from dse.workload.profile import profile_for, stack_profiles, trace_profile

PRESETS = ["chat", "chat_tools", "agentic_coding", "deep_research"]


@pytest.fixture(scope="module")
def profiles():
    return {name: profile_for(name, sessions=48, seed=0) for name in PRESETS}


def _check_leaves(prof: WorkloadProfile):
    for name, leaf in vars(prof).items():
        assert isinstance(leaf, jax.Array) and leaf.dtype == jnp.float64, name
        assert bool(jnp.all(jnp.isfinite(leaf))), name
        expect = {"spec_acceptance": (3,), "cache_grid": (CACHE_GRID_POINTS,)}
        expect["hit_curve"] = (CACHE_GRID_POINTS,)
        expect["session_paths"] = (SESSION_SLOTS, len(COEFFICIENTS))
        expect["session_weight"] = (SESSION_SLOTS,)
        expect["fanout_chains"] = (FANOUT_SLOTS, CHAIN_SLOTS, len(COEFFICIENTS))
        expect["fanout_owner"] = (FANOUT_SLOTS, SESSION_SLOTS)
        assert leaf.shape == expect.get(name, ()), name


@pytest.mark.parametrize("name", PRESETS)
def test_profile_leaves_and_consistency(profiles, name):
    p = profiles[name]
    _check_leaves(p)
    f = float(p.reusable_fraction)
    assert float(p.hit_curve[-1]) == pytest.approx(f, abs=1e-9)  # the curve's limit
    assert float(p.hit_curve[0]) == 0.0 and bool(jnp.all(jnp.diff(p.hit_curve) >= 0))
    assert float(p.new_tokens) == pytest.approx(float(p.input_tokens) * (1 - f), rel=1e-9)
    assert 0 < float(p.prefill_past) < float(p.max_context)
    assert float(p.decode_context) > float(p.output_tokens) / 2
    assert float(p.max_context) > float(p.input_tokens)
    assert float(p.agents_in_flight) >= 1.0
    assert float(p.session_input_tokens) == pytest.approx(
        float(p.input_tokens * p.requests_per_session), rel=1e-9
    )
    assert bool(jnp.all((p.spec_acceptance > 0) & (p.spec_acceptance < 1)))


def test_profiles_differ_as_the_workloads_do(profiles):
    chat, agent, deep = profiles["chat"], profiles["agentic_coding"], profiles["deep_research"]
    assert float(chat.agents_in_flight) == pytest.approx(1.0, abs=1e-9)
    assert float(chat.sub_agent_input_fraction) == 0.0
    assert 1.2 < float(agent.agents_in_flight) < float(deep.agents_in_flight)
    assert float(chat.gap_s) > 60 > 10 > float(agent.gap_s)  # human think vs tool time
    assert float(chat.reusable_fraction) < float(agent.reusable_fraction)  # TTL misses in chat
    assert 0.85 <= float(agent.reusable_fraction) <= 0.95  # workloads.md §9: 85-98 %
    assert float(deep.session_input_tokens) > 10 * float(chat.session_input_tokens)
    assert float(agent.spec_acceptance[2]) > float(chat.spec_acceptance[2])


def test_stacked_profiles_vmap_and_jit(profiles):
    stacked = stack_profiles([profiles[n] for n in PRESETS])
    assert stacked.hit_curve.shape == (len(PRESETS), CACHE_GRID_POINTS)

    @jax.jit
    def uncached_per_output(p: WorkloadProfile):
        return p.new_tokens / p.output_tokens + jnp.interp(1e6, p.cache_grid, p.hit_curve)

    out = jax.vmap(uncached_per_output)(stacked)
    assert out.shape == (len(PRESETS),) and bool(jnp.all(jnp.isfinite(out)))


@pytest.mark.skipif(
    not trace_dir().is_dir() and not os.environ.get("DSE_REQUIRE_SHARED"),
    reason="Mooncake traces not found (CI sets DSE_REQUIRE_SHARED=1: there it fails instead)",
)
def test_trace_profile():
    p = trace_profile("conversation")
    _check_leaves(p)
    df = load_mooncake("conversation")
    assert float(p.reusable_fraction) == pytest.approx(infinite_hit_rate(df, 300.0), abs=1e-12)
    assert float(p.input_tokens) == pytest.approx(12_035, abs=1)
    assert float(p.requests_per_session) == 1.0 and float(p.gap_s) == 0.0  # no session ids
