"""Session populations: Poisson starts sized by Little's law to a target concurrency."""

import time

import numpy as np
import pytest

from dse.workload import COLUMNS, active_sessions, load_preset, simulate_population


@pytest.fixture(scope="module")
def agentic():
    p = load_preset("agentic_coding")
    start = time.perf_counter()
    df = simulate_population(p, 200, 16.0, np.random.default_rng(0))
    return df, time.perf_counter() - start


def test_columns_sorting_and_keys(agentic):
    df, _ = agentic
    assert list(df.columns) == [*COLUMNS, "session", "agent_key"]
    assert df["t_start_s"].is_monotonic_increasing
    assert df["session"].nunique() == 200 and df["session"].dtype.kind == "i"
    pairs = df.groupby("agent_key")[["session", "agent_id"]].nunique()
    assert (pairs == 1).all().all()  # one (session, agent) per key
    assert df.groupby(["session", "agent_id"])["agent_key"].nunique().max() == 1
    first = df.groupby("session")["t_start_s"].min()
    assert first.is_monotonic_increasing  # sessions are numbered in start order


def test_sessions_keep_their_own_shape(agentic):
    df, _ = agentic
    assert (df["new_tokens"] == df["input_tokens"] - df["cached_prefix_tokens"]).all()
    per = df.groupby("session").size()
    assert (
        250 <= per.mean() <= 320
        and (df[df["agent"] == "main"].groupby("session").size() == 58).all()
    )


def test_mean_concurrency_near_target(agentic):
    df, _ = agentic
    life = (df["t_start_s"] + df["duration_s"]).groupby(df["session"]).max() - df.groupby(
        "session"
    )["t_start_s"].min()
    t0 = df["t_start_s"].min() + life.mean()  # after the ramp-up
    t1 = df.groupby("session")["t_start_s"].min().max()  # before the drain
    active = active_sessions(df, np.linspace(t0, t1, 400))
    assert 16 * 0.7 <= active.mean() <= 16 * 1.3  # Poisson noise over ~12 lifetimes


def test_fast_enough(agentic):
    _, seconds = agentic
    assert seconds < 5.0


def test_bad_arguments():
    with pytest.raises(ValueError):
        simulate_population(load_preset("chat"), 0, 4.0, np.random.default_rng(0))
