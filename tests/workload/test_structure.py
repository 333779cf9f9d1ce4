"""Critical-path structure of sampled sessions (``dse.workload.structure``)."""

import dataclasses

import numpy as np
import pytest

from dse.model.session_time import CHAIN_SLOTS, FANOUT_SLOTS, SESSION_SLOTS
from dse.workload import load_preset, simulate_population
from dse.workload.session import simulate_session
from dse.workload.structure import session_structure


def _structure(table, sessions=None):
    new = table["new_tokens"].to_numpy(dtype=np.float64)
    s = np.zeros(len(table), dtype=np.int64) if sessions is None else sessions
    return session_structure(table, new, s)


def test_one_session_sums_every_call_once():
    table = simulate_session(load_preset("agentic_coding"), np.random.default_rng(1))
    f = _structure(table)
    assert f["session_weight"].tolist() == [1.0] + [0.0] * (SESSION_SLOTS - 1)
    main, chains = f["session_paths"][0], f["fanout_chains"]
    calls = main[0] + chains[..., 0].sum()
    assert calls == len(table)
    assert main[2] + chains[..., 2].sum() == table["output_tokens"].sum()
    assert main[1] + chains[..., 1].sum() == table["new_tokens"].sum()
    spawning = table.loc[table["agent"] == "sub", "turn"].nunique()
    assert f["fanout_owner"][:, 0].sum() == spawning
    # Every gap is counted: tool gaps of both agents plus the sub-agents' hand-backs.
    gaps = np.nansum(table["gap_s"]) + np.nansum(table["handback_s"])
    assert main[3] + chains[..., 3].sum() == pytest.approx(gaps)


def test_sessions_fill_the_fanout_slots_in_order():
    params = load_preset("agentic_coding_400k")
    pop = simulate_population(params, 8, 4.0, np.random.default_rng(0))
    f = _structure(pop, pop["session"].to_numpy())
    kept = int(f["session_weight"].sum())
    assert 1 <= kept < 8  # ~37 fan-outs per session: 5 fit in 192 slots
    assert f["fanout_owner"].sum() <= FANOUT_SLOTS
    assert f["fanout_owner"][:, kept:].sum() == 0
    assert (f["fanout_owner"].sum(axis=1) <= 1).all()


def test_traces_without_agents_are_one_call_sessions():
    pop = simulate_population(load_preset("chat"), 3, 2.0, np.random.default_rng(0))
    table = pop[["input_tokens", "new_tokens", "output_tokens"]]
    f = _structure(table, np.arange(len(table)))
    assert f["session_weight"].sum() == min(SESSION_SLOTS, len(table))
    assert (f["session_paths"][: int(f["session_weight"].sum()), 0] == 1.0).all()
    assert f["fanout_owner"].sum() == 0


def test_too_wide_or_too_many_fanouts_are_refused_in_one_line():
    with pytest.raises(ValueError, match="sub_count_max"):
        dataclasses.replace(load_preset("deep_research"), sub_count_max=CHAIN_SLOTS + 1)
    table = simulate_session(load_preset("agentic_coding"), np.random.default_rng(0))
    merged = table.assign(turn=np.where(table["agent"] == "sub", 0, table["turn"]))
    assert merged.loc[merged["agent"] == "sub", "agent_id"].nunique() > CHAIN_SLOTS
    with pytest.raises(ValueError, match="sub_count_max"):
        _structure(merged)  # a table from elsewhere: ~27 sub-agents on one turn
    many = dataclasses.replace(load_preset("deep_research"), main_turns=600, sub_spawn_prob=1.0)
    with pytest.raises(ValueError, match="sub_spawn_prob"):
        _structure(simulate_session(many, np.random.default_rng(0)))
