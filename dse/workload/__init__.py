"""Workload models (pure numpy/pandas; the profile is a JAX pytree).

* :mod:`session` / :mod:`params`: one session of LLM requests (main agent + sub-agents);
  defaults reproduce the seed Claude Code session.
* :mod:`presets`: ``conf/workload/*.yaml`` (chat, chat_tools, agentic_coding, deep_research).
* :mod:`population`: many sessions with Poisson starts at a target concurrency.
* :mod:`trace`: Mooncake traces and their prefix reuse.
* :mod:`cache`: prompt-cache hit rate vs capacity (LRU + TTL), normalised by request rate.
* :mod:`profile`: the numbers the serving model consumes (``WorkloadProfile``, a JAX pytree).
"""

from dse.model.workload import CACHE_GRID_POINTS, CACHE_GRID_TOKEN_S, WorkloadProfile
from dse.workload.cache import (
    BLOCK_TOKENS,
    Reuse,
    hit_curve,
    hit_rate,
    infinite_hit_rate,
    request_rate_per_s,
    request_reuse,
)
from dse.workload.params import SessionParams
from dse.workload.population import active_sessions, simulate_population
from dse.workload.presets import (
    acceptance_from_tau,
    available_presets,
    load_preset,
    load_preset_raw,
    tokens_per_step,
)
from dse.workload.profile import (
    build_profile,
    profile_for,
    stack_profiles,
    trace_profile,
)
from dse.workload.session import COLUMNS, DEFAULT_SEED, session_stats, simulate_session
from dse.workload.trace import load_mooncake, prefix_hit_rate, trace_dir

__all__ = [
    "BLOCK_TOKENS",
    "CACHE_GRID_POINTS",
    "CACHE_GRID_TOKEN_S",
    "COLUMNS",
    "DEFAULT_SEED",
    "Reuse",
    "SessionParams",
    "WorkloadProfile",
    "acceptance_from_tau",
    "active_sessions",
    "available_presets",
    "build_profile",
    "hit_curve",
    "hit_rate",
    "infinite_hit_rate",
    "load_mooncake",
    "load_preset",
    "load_preset_raw",
    "prefix_hit_rate",
    "profile_for",
    "request_rate_per_s",
    "request_reuse",
    "session_stats",
    "simulate_population",
    "simulate_session",
    "stack_profiles",
    "tokens_per_step",
    "trace_dir",
    "trace_profile",
]
