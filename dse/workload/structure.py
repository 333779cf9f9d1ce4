"""The critical paths of sampled sessions, as the arrays the model's session time consumes.

For each of the first sessions of a request table (up to ``SESSION_SLOTS``, and as many as fit
``FANOUT_SLOTS`` fan-outs in all), the main agent's calls are summed into one row of
``COEFFICIENTS`` (calls, uncached prompt tokens, output tokens, non-LLM seconds, squared output
tokens) and every sub-agent's calls into one chain row, grouped by the main turn that spawned
it (``turn``; its non-LLM seconds include the hand-back, ``handback_s``). The model
(``dse.model.session_time``) prices each row with a design's latencies and takes the slowest
chain of each fan-out. Tables without agents (traces) are sessions of main calls only; without
a ``session`` column each request is a session of its own.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dse.model.session_time import CHAIN_SLOTS, COEFFICIENTS, FANOUT_SLOTS, SESSION_SLOTS


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A float column with NaN (an agent's last call) as 0; zeros where the table has none."""
    if name not in frame:
        return np.zeros(len(frame))
    return np.nan_to_num(frame[name].to_numpy(dtype=np.float64), nan=0.0)


def session_structure(
    requests: pd.DataFrame, new_tokens: np.ndarray, sessions: np.ndarray
) -> dict[str, np.ndarray]:
    """The profile's session fields (``session_paths``, ``session_weight``, ``fanout_chains``,
    ``fanout_owner``) of ``requests`` with per-request uncached tokens ``new_tokens`` and session
    index ``sessions`` (``profile._sessions``). Vectorized: sums by group, no loop over calls."""
    k = len(COEFFICIENTS)
    paths = np.zeros((SESSION_SLOTS, k))
    weight = np.zeros(SESSION_SLOTS)
    chains = np.zeros((FANOUT_SLOTS, CHAIN_SLOTS, k))
    owner = np.zeros((FANOUT_SLOTS, SESSION_SLOTS))
    sessions = np.asarray(sessions, dtype=np.int64)
    out = requests["output_tokens"].to_numpy(dtype=np.float64)
    gaps = _column(requests, "gap_s") + _column(requests, "handback_s")
    coef = np.stack([np.ones(len(out)), np.asarray(new_tokens, np.float64), out, gaps, out**2], 1)
    is_sub = (requests["agent"] == "sub").to_numpy() if "agent" in requests else None
    is_sub = np.zeros(len(out), dtype=bool) if is_sub is None else is_sub
    considered = sessions < SESSION_SLOTS
    # Sub-agent chains (session, spawning turn, agent) and their fan-outs (session, turn).
    sub = np.flatnonzero(is_sub & considered)
    turn = requests["turn"].to_numpy()[sub] if len(sub) else np.zeros(0, dtype=np.int64)
    agent = requests["agent_id"].to_numpy()[sub] if len(sub) else np.zeros(0, dtype=np.int64)
    chain_keys, chain_of = np.unique(np.stack([sessions[sub], turn, agent], 1), axis=0,
                                     return_inverse=True)  # fmt: skip
    chain_of = chain_of.reshape(-1)
    chain_coef = np.zeros((len(chain_keys), k))
    np.add.at(chain_coef, chain_of, coef[sub])
    fan_keys, fan_of = np.unique(chain_keys[:, :2], axis=0, return_inverse=True)
    fan_of = fan_of.reshape(-1)
    width = np.bincount(fan_of, minlength=len(fan_keys))
    if len(width) and width.max() > CHAIN_SLOTS:
        raise ValueError(
            f"a main turn spawns {width.max()} sub-agents at once; the session model holds at "
            f"most {CHAIN_SLOTS} per fan-out (lower sub_count_max in the workload preset)"
        )
    # Sessions are kept in order while their fan-outs fit the slots.
    n = min(SESSION_SLOTS, int(sessions.max()) + 1)
    per_session = np.bincount(fan_keys[:, 0], minlength=n)[:n]
    fits = np.cumsum(per_session) <= FANOUT_SLOTS
    if not fits[0]:
        raise ValueError(
            f"one session spawns sub-agents {per_session[0]} times; the session model holds at "
            f"most {FANOUT_SLOTS} fan-outs (fewer main_turns or a lower sub_spawn_prob in the "
            "workload preset)"
        )
    kept = int(np.argmin(fits)) if not fits.all() else n
    weight[:kept] = 1.0
    main = np.flatnonzero(~is_sub & (sessions < kept))
    np.add.at(paths, sessions[main], coef[main])
    # Fan-outs are sorted by session, so the kept ones are the first; a chain's slot is its rank
    # among its fan-out's chains (chain keys are sorted within a fan-out).
    fans = np.flatnonzero(fan_keys[:, 0] < kept)
    first_chain = np.searchsorted(fan_of, np.arange(len(fan_keys)))
    use = fan_of < len(fans)
    slot = np.arange(len(chain_keys)) - first_chain[fan_of]
    chains[fan_of[use], slot[use]] = chain_coef[use]
    owner[fans, fan_keys[fans, 0]] = 1.0
    return {
        "session_paths": paths,
        "session_weight": weight,
        "fanout_chains": chains,
        "fanout_owner": owner,
    }
