"""What a study writes about its workload, so that the report reads files and re-simulates
nothing: one simulated session (the seed's Figure 4) and the token-weighted prompt-cache hit
rate of the population the study's :class:`~dse.stack.Stack` profiled, against capacity."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dse.workload.cache import hit_curve
from dse.workload.params import SessionParams
from dse.workload.population import simulate_population
from dse.workload.session import DEFAULT_SEED, simulate_session

# The population ``profile_for`` / ``split_profiles`` simulate (seed 0, 16 sessions in flight).
POPULATION_SEED = 0
POPULATION_CONCURRENCY = 16.0


def session_table(params: SessionParams, seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """One session's requests in time order (``simulate_session`` with the documented seed)."""
    return simulate_session(params, np.random.default_rng(seed))


def cache_curve(params: SessionParams, sessions: int) -> tuple[pd.DataFrame, float]:
    """(the hit-rate curve over capacity / request rate in token-seconds, the population's
    mean prompt tokens per request) for the population a study of ``sessions`` profiles."""
    requests = simulate_population(
        params, sessions, POPULATION_CONCURRENCY, np.random.default_rng(POPULATION_SEED)
    )
    grid, hit = hit_curve(requests, params.prompt_cache_ttl_s)
    curve = pd.DataFrame({"capacity_token_s": grid, "hit_rate": hit})
    return curve, float(requests["input_tokens"].mean())
