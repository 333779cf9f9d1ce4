"""Many sessions at once: Poisson session arrivals sized to a target mean concurrency.

Session starts form a Poisson process (workloads.md §9: "Session arrivals: Poisson per user
pool"). Its rate comes from Little's law, ``rate = concurrency / mean session lifetime``, with
the lifetime (first request start to last request end) averaged over the simulated sessions
themselves, so the time-average number of active sessions is ~``concurrency`` once the first
sessions have run for a lifetime (the table includes that ramp-up and the final drain).

Sessions are generated one after another from the one ``rng`` (the per-session loop is the
seed-calibrated generator, ~4 ms per agentic session); everything after that is vectorised.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dse.workload.params import SessionParams
from dse.workload.session import COLUMNS, rows_to_frame, session_rows


def simulate_population(
    params: SessionParams, sessions: int, concurrency: float, rng: np.random.Generator
) -> pd.DataFrame:
    """``sessions`` sessions with Poisson starts; ~``concurrency`` active on average.

    Returns COLUMNS plus ``session`` (int, in start order) and ``agent_key`` (int, unique over
    the population: one per (session, agent_id)), sorted by ``t_start_s`` (ties: session, then
    main before sub, then agent id).
    """
    if sessions < 1 or not concurrency > 0:
        raise ValueError("sessions must be >= 1 and concurrency > 0")
    per_session = [session_rows(params, rng) for _ in range(sessions)]
    counts = np.array([len(r) for r in per_session], dtype=np.int64)
    df = rows_to_frame([row for rows in per_session for row in rows])
    session = np.repeat(np.arange(sessions, dtype=np.int64), counts)
    t0 = df["t_start_s"].to_numpy()
    end = t0 + df["duration_s"].to_numpy()
    lifetime = np.maximum.reduceat(end, np.concatenate([[0], np.cumsum(counts)[:-1]]))
    rate = concurrency / max(float(lifetime.mean()), 1e-9)
    offsets = np.concatenate([[0.0], np.cumsum(rng.exponential(1.0 / rate, sessions - 1))])
    df["t_start_s"] = t0 + offsets[session]
    df["session"] = session
    agent_id = df["agent_id"].to_numpy()
    width = int(agent_id.max()) + 1
    df["agent_key"] = pd.factorize(session * width + agent_id, sort=True)[0].astype(np.int64)
    is_sub = (df["agent"] == "sub").to_numpy()
    order = np.lexsort((agent_id, is_sub, session, df["t_start_s"].to_numpy()))
    return df.iloc[order].reset_index(drop=True)[[*COLUMNS, "session", "agent_key"]]


def active_sessions(df: pd.DataFrame, t: np.ndarray) -> np.ndarray:
    """Number of sessions active (between first start and last end) at each time in ``t``."""
    g = df.assign(end=df["t_start_s"] + df["duration_s"]).groupby("session")
    first = np.sort(g["t_start_s"].min().to_numpy())
    last = np.sort(g["end"].max().to_numpy())
    t = np.asarray(t, dtype=np.float64)
    return np.searchsorted(first, t, side="right") - np.searchsorted(last, t, side="right")
