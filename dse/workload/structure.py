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


def _coefficients(frame: pd.DataFrame, new: np.ndarray, extra_s: np.ndarray | None = None):
    """COEFFICIENTS of a group of calls (rows of ``frame``, uncached tokens ``new``)."""
    out = frame["output_tokens"].to_numpy(dtype=np.float64)
    gap = frame["gap_s"].to_numpy(dtype=np.float64) if "gap_s" in frame else np.zeros(len(out))
    gap_s = float(np.nansum(gap)) + (float(np.nansum(extra_s)) if extra_s is not None else 0.0)
    return [float(len(out)), float(new.sum()), float(out.sum()), gap_s, float((out**2).sum())]


def session_structure(
    requests: pd.DataFrame, new_tokens: np.ndarray, sessions: np.ndarray
) -> dict[str, np.ndarray]:
    """The profile's session fields (``session_paths``, ``session_weight``, ``fanout_chains``,
    ``fanout_owner``) of ``requests`` with per-request uncached tokens ``new_tokens`` and session
    index ``sessions`` (``profile._sessions``)."""
    k = len(COEFFICIENTS)
    paths = np.zeros((SESSION_SLOTS, k))
    weight = np.zeros(SESSION_SLOTS)
    chains = np.zeros((FANOUT_SLOTS, CHAIN_SLOTS, k))
    owner = np.zeros((FANOUT_SLOTS, SESSION_SLOTS))
    new_tokens = np.asarray(new_tokens, dtype=np.float64)
    is_sub = (requests["agent"] == "sub").to_numpy() if "agent" in requests else None
    order = np.argsort(sessions, kind="stable")
    starts = np.searchsorted(sessions[order], np.arange(SESSION_SLOTS + 1))
    fanouts = 0
    for s in range(min(SESSION_SLOTS, int(sessions.max()) + 1)):
        rows = order[starts[s] : starts[s + 1]]
        main = rows if is_sub is None else rows[~is_sub[rows]]
        sub = rows[:0] if is_sub is None else rows[is_sub[rows]]
        groups = []
        if len(sub):
            frame = requests.iloc[sub]
            keys = frame[["turn", "agent_id"]].to_numpy()
            for turn in np.unique(keys[:, 0]):
                agents = np.unique(keys[keys[:, 0] == turn, 1])
                if len(agents) > CHAIN_SLOTS:
                    raise ValueError(
                        f"a main turn spawns {len(agents)} sub-agents at once; the session model "
                        f"holds at most {CHAIN_SLOTS} per fan-out (lower sub_count_max in the "
                        "workload preset)"
                    )
                groups.append([sub[(keys[:, 0] == turn) & (keys[:, 1] == a)] for a in agents])
        if fanouts + len(groups) > FANOUT_SLOTS:
            if s == 0:
                raise ValueError(
                    f"one session spawns sub-agents {len(groups)} times; the session model holds "
                    f"at most {FANOUT_SLOTS} fan-outs (fewer main_turns or a lower "
                    "sub_spawn_prob in the workload preset)"
                )
            break  # the sessions sampled so far fill the fan-out slots
        paths[s] = _coefficients(requests.iloc[main], new_tokens[main])
        weight[s] = 1.0
        for chain_rows in groups:
            for j, chain in enumerate(chain_rows):
                frame = requests.iloc[chain]
                handback = frame["handback_s"].to_numpy(dtype=np.float64)
                chains[fanouts, j] = _coefficients(frame, new_tokens[chain], handback)
            owner[fanouts, s] = 1.0
            fanouts += 1
    return {
        "session_paths": paths,
        "session_weight": weight,
        "fanout_chains": chains,
        "fanout_owner": owner,
    }
