"""Workload generators (pure numpy): agentic coding sessions calibrated to the seed session."""

from dse.workload.session import (
    COLUMNS,
    DEFAULT_SEED,
    SessionParams,
    session_stats,
    simulate_session,
)

__all__ = ["COLUMNS", "DEFAULT_SEED", "SessionParams", "session_stats", "simulate_session"]
