"""Workload presets: every field set and sourced, loader errors, and the published token ratios.

Token ratios (Anthropic, "How we built our multi-agent research system", workloads.md l.74 and
§9 l.273): "agents typically use about 4x more tokens than chat interactions, and multi-agent
systems use about 15x more tokens than chats". Both are rounded single figures ("about"), so the
bands are +-20 % around them (agentic / chat in [3.2, 4.8], deep research / chat in [12, 18]);
chat with tools counts as chat (agentic / chat_tools in [2.8, 4.8]: it is a bit larger than chat).
Means over 40 sessions per preset: the chat total's session-to-session spread (~30 %) leaves a
~5 % standard error on the ratio, well inside the bands.
"""

import re
from dataclasses import fields

import numpy as np
import pytest

from dse.workload import (
    SessionParams,
    acceptance_from_tau,
    available_presets,
    load_preset,
    load_preset_raw,
    session_stats,
    simulate_session,
    tokens_per_step,
)

PRESETS = ["agentic_coding", "chat", "chat_tools", "deep_research"]
NAMES = {f.name for f in fields(SessionParams)}


def _mean_tokens(name, seeds=range(40)):
    p = load_preset(name)
    totals = [session_stats(simulate_session(p, np.random.default_rng(s))) for s in seeds]
    return float(np.mean([t["total_tokens"] for t in totals]))


@pytest.fixture(scope="module")
def tokens():
    return {name: _mean_tokens(name) for name in PRESETS}


def test_presets_available():
    assert set(PRESETS) <= set(available_presets())


@pytest.mark.parametrize("name", PRESETS)
def test_every_field_set_and_sourced(name):
    raw = load_preset_raw(name)
    assert set(raw) - {"title", "sources"} == NAMES
    sources = raw["sources"]
    assert set(sources) == NAMES
    assert all(isinstance(v, str) and v.strip() for v in sources.values())
    assert isinstance(load_preset(name), SessionParams)


def test_agentic_coding_preset_is_the_seed_default():
    assert load_preset("agentic_coding") == SessionParams()


@pytest.mark.parametrize("name", PRESETS)
def test_quoted_acceptance_inverts_the_quoted_tau(name):
    """Where a source gives tau and says 'alpha = x ... at k = 4', x is the inversion."""
    p, sources = load_preset(name), load_preset_raw(name)["sources"]
    for field in ("spec_acceptance_draft", "spec_acceptance_ngram"):
        text = sources[field]
        tau = float(re.findall(r"tau (\d\.\d+)", text)[-1])
        alpha = float(re.search(r"alpha = (0\.\d+)", text).group(1))
        assert getattr(p, field) == alpha
        assert abs(acceptance_from_tau(tau, 4) - alpha) < 5e-4
    assert abs(tokens_per_step(0.75, 4) - 3.05) < 0.01  # workloads.md §3 worked example


def test_unknown_preset_lists_available_and_suggests():
    with pytest.raises(ValueError, match="did you mean 'chat_tools'") as e:
        load_preset("chat_tool")
    assert "available:" in str(e.value) and "deep_research" in str(e.value)
    assert load_preset("deep-research") == load_preset("deep_research")


def test_unknown_field_names_the_file(tmp_path):
    (tmp_path / "workload").mkdir()
    (tmp_path / "workload" / "mine.yaml").write_text("main_turns: 3\nsub_spawn_prob: 0\nttl: 5\n")
    with pytest.raises(ValueError, match=r"mine\.yaml.*unknown SessionParams fields: 'ttl'"):
        load_preset("mine", conf_dir=tmp_path)
    (tmp_path / "workload" / "mine.yaml").write_text("main_turns: 3\nsub_spawn_prob: 0\n")
    assert load_preset("mine", conf_dir=tmp_path).main_turns == 3


def test_published_token_ratios(tokens):
    chat = tokens["chat"]
    assert 3.2 <= tokens["agentic_coding"] / chat <= 4.8
    assert 2.8 <= tokens["agentic_coding"] / tokens["chat_tools"] <= 4.8
    assert 12.0 <= tokens["deep_research"] / chat <= 18.0
    assert chat < tokens["chat_tools"] < tokens["agentic_coding"] < tokens["deep_research"]


def test_chat_shapes():
    """Chat: main agent only, every call after a human pause; chat_tools: tool runs <= 3."""
    chat = simulate_session(load_preset("chat"), np.random.default_rng(0))
    assert (chat["agent"] == "main").all()
    gaps = chat["gap_s"].to_numpy()[:-1]
    assert np.median(gaps) > 20 and gaps.max() <= 3600  # human think time, clipped at 1 h
    p = load_preset("chat_tools")
    tools = simulate_session(p, np.random.default_rng(0))
    user = tools["user_turn"].to_numpy()
    assert user[0] and chat["user_turn"].all()
    runs = np.diff(np.flatnonzero(np.concatenate([user, [True]]))) - 1  # tool turns in a row
    assert runs.max() <= p.max_tool_turns and 0.3 < user.mean() < 0.7


def test_deep_research_fans_out():
    df = simulate_session(load_preset("deep_research"), np.random.default_rng(0))
    subs = df[df["agent"] == "sub"]
    starts = subs.groupby("agent_id")["t_start_s"].min().value_counts()
    assert starts.index.size >= 6 and starts.between(3, 5).all()  # rounds of 3-5 in parallel
    assert subs.groupby("agent_id").size().between(10, 18).all()
