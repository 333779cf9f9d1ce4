"""Session generator: the default session reproduces the seed Claude Code session."""

from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import pytest
import yaml

from dse.workload import DEFAULT_SEED, SessionParams, session_stats, simulate_session

YAML = Path(__file__).resolve().parents[2] / "conf" / "workload" / "agentic_coding.yaml"
SEEDS = range(30)


def _stats(seed, params=None):
    return session_stats(simulate_session(params or SessionParams(), np.random.default_rng(seed)))


@pytest.fixture(scope="module")
def seed_stats():
    return _stats(DEFAULT_SEED)


@pytest.fixture(scope="module")
def many_stats():
    return [_stats(s) for s in SEEDS]


def test_default_seed_reproduces_seed_session_in_sample(seed_stats):
    """IN-SAMPLE: DEFAULT_SEED was chosen by scanning seeds for the closest match to these
    figures, so this pins that seed's session; the honest check is the average over seeds."""
    s = seed_stats
    assert abs(s["requests"] / 283 - 1) <= 0.05
    assert s["main_requests"] == 58
    assert abs(s["sub_requests"] / 225 - 1) <= 0.07
    assert s["initial_main_context"] == 15_000
    assert 140_000 <= s["peak_main_context"] <= 170_000
    assert 18_000 <= s["post_compaction_context"] <= 26_000
    assert 75_000 <= s["mean_main_context_first40"] <= 95_000
    assert abs(s["input_tokens_first40"] / 3.5e6 - 1) <= 0.15
    assert 0.6e6 <= s["main_input_tokens_after40"] <= 1.8e6  # "another million"
    assert 25 <= s["duration_min"] <= 42


def test_average_over_seeds_reproduces_seed_session(many_stats):
    mean = {
        k: np.mean([s[k] for s in many_stats])
        for k in (
            "requests",
            "duration_min",
            "peak_main_context",
            "mean_main_context_first40",
            "input_tokens_first40",
        )
    }
    assert abs(mean["requests"] / 283 - 1) <= 0.05
    assert abs(mean["duration_min"] / 33 - 1) <= 0.15
    assert 150_000 <= mean["peak_main_context"] <= 162_000
    assert 80_000 <= mean["mean_main_context_first40"] <= 92_000
    assert abs(mean["input_tokens_first40"] / 3.5e6 - 1) <= 0.08
    assert all(s["main_requests"] == 58 for s in many_stats)


def test_cache_hit_rate_in_band(seed_stats, many_stats):
    assert 0.85 <= seed_stats["cache_hit_rate"] <= 0.98
    assert all(0.85 <= s["cache_hit_rate"] <= 0.98 for s in many_stats)


def test_exactly_one_compaction(seed_stats, many_stats):
    assert seed_stats["compactions"] == 1
    assert all(s["compactions"] == 1 for s in many_stats)


def test_request_rows_are_consistent():
    df = simulate_session(SessionParams(), np.random.default_rng(DEFAULT_SEED))
    assert (df["new_tokens"] == df["input_tokens"] - df["cached_prefix_tokens"]).all()
    assert (df["cached_prefix_tokens"] >= 0).all() and (df["new_tokens"] > 0).all()
    assert df["t_start_s"].is_monotonic_increasing
    for (agent, aid), g in df.groupby(["agent", "agent_id"], sort=False):
        cached = g["cached_prefix_tokens"].to_numpy()
        prev = g["input_tokens"].to_numpy()[:-1]
        assert cached[0] == 0  # fresh agent: nothing cached
        expect = np.where(g["compacted"].to_numpy()[1:], 0, prev)
        assert (cached[1:] == expect).all()
        if agent == "sub":
            assert g["input_tokens"].iloc[0] == 15_000 and not g["compacted"].any()
    main = df[df["agent"] == "main"]
    i = int(np.flatnonzero(main["compacted"].to_numpy())[0])
    assert main["input_tokens"].iloc[i - 1] >= SessionParams().compaction_threshold
    assert main["input_tokens"].iloc[i] < 30_000


@pytest.mark.parametrize("seed", [0, DEFAULT_SEED])
def test_more_turns_never_lowers_total_tokens(seed):
    prev = -1
    for n in range(1, 80, 3):
        df = simulate_session(SessionParams(main_turns=n), np.random.default_rng(seed))
        total = int(df["input_tokens"].sum() + df["output_tokens"].sum())
        assert total >= prev
        prev = total


def test_no_sub_agents_and_no_compaction_limits():
    p = SessionParams(sub_spawn_prob=0.0, compaction_threshold=1e9)
    df = simulate_session(p, np.random.default_rng(1))
    assert (df["agent"] == "main").all() and len(df) == 58 and not df["compacted"].any()
    assert df["input_tokens"].is_monotonic_increasing


def test_yaml_loads_and_every_field_is_sourced():
    raw = yaml.safe_load(YAML.read_text())
    params = SessionParams.from_dict(raw)
    assert params == SessionParams()  # the dataclass defaults mirror the YAML
    names = {f.name for f in fields(SessionParams)}
    assert set(raw) - {"title", "sources"} == names  # every field is set in the YAML
    sources = raw["sources"]
    for k in names:
        assert isinstance(sources.get(k), str) and sources[k].strip(), f"{k} has no source"
    assert set(sources) <= names
    values = asdict(params)
    assert values.pop("sub_agent_model") is None
    assert all(isinstance(v, (int, float)) for v in values.values())


def test_session_columns_carry_durations_and_gaps():
    p = SessionParams()
    df = simulate_session(p, np.random.default_rng(DEFAULT_SEED))
    expect = p.ttft_s + df["output_tokens"] / p.decode_tok_s
    assert np.allclose(df["duration_s"], expect)
    for _, g in df.groupby(["agent", "agent_id"]):
        gaps = g["gap_s"].to_numpy()
        assert np.isnan(gaps[-1]) and (gaps[:-1] > 0).all()  # NaN only on an agent's last call
        nxt = g["t_start_s"].to_numpy()[1:]
        end = (g["t_start_s"] + g["duration_s"]).to_numpy()[:-1]
        assert (nxt >= end + gaps[:-1] - 1e-9).all()  # the next call waits at least the gap


def test_invalid_params_rejected():
    with pytest.raises(ValueError):
        SessionParams(compaction_summary=200_000)
    with pytest.raises(ValueError):
        SessionParams(sub_spawn_prob=1.5)
    with pytest.raises(ValueError):
        SessionParams.from_dict({"bogus": 1})
    with pytest.raises(ValueError, match="did you mean 'main_turns'"):
        SessionParams.from_dict({"main_turn": 3})
    with pytest.raises(ValueError):
        SessionParams(user_turn_prob=2.0)
    with pytest.raises(ValueError):
        SessionParams(spec_acceptance_ngram=1.0)
