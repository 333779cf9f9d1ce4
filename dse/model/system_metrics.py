"""What a whole system returns for a workload, and its infeasibility reasons."""

from __future__ import annotations

import equinox as eqx
from jax import Array

# What limits the system at its operating point.
SYSTEM_BOUNDS: tuple[str, ...] = (
    "decode_compute",
    "decode_memory",
    "decode_network",
    "decode_overhead",
    "prefill_pool",
)


class SystemMetrics(eqx.Module):
    """Per system design. Times in ms, rates per second, money in USD; never NaN."""

    ttft_ms: Array  # means
    tpot_ms: Array
    ttft_ms_p50: Array  # percentiles over requests (``tails.py``)
    ttft_ms_p90: Array
    ttft_ms_p99: Array
    tpot_ms_p50: Array
    tpot_ms_p90: Array
    tpot_ms_p99: Array
    tok_s_user: Array
    output_tok_s: Array  # whole system
    tok_s_per_unit: Array  # output tokens/s per accelerator (all pools)
    input_tok_s: Array  # prompt tokens/s processed (cached + uncached)
    requests_s: Array
    sessions: Array  # concurrent agent sessions the system carries (Little's law)
    hit_rate: Array  # token-weighted prompt-cache hit rate (all tiers)
    hit_hbm: Array
    hit_host: Array
    hit_storage: Array
    uncached_tokens: Array  # prefilled per request (misses + new + recomputed)
    restore_ms: Array  # critical-path KV restore per request
    units: Array  # accelerators in all pools
    decode_batch: Array  # sequences running per decode worker
    max_batch: Array  # most that fit per decode worker
    prefill_utilization: Array
    usd_per_hour: Array
    usd_per_unit_hour: Array  # all-in $ per accelerator-hour (pools + tiers over units)
    capex_usd: Array  # purchase price of pools, fabric and tiers (the hardware budget)
    power_kw: Array  # at the wall (PUE included)
    usd_per_mtok: Array  # all cost per million output tokens
    usd_per_mtok_output: Array  # decode (and FFN) pools' cost per million output tokens
    usd_per_mtok_uncached: Array  # prefill cost per million uncached input tokens
    usd_per_mtok_cached: Array  # cache-tier cost per million cached input tokens
    usd_per_session: Array
    tok_s_per_mw: Array
    accuracy_penalty_pct: Array
    feasible: Array
    reason: Array
    bound: Array
    compute_s: Array  # decode step breakdown
    memory_s: Array
    network_s: Array
    overhead_s: Array


SYSTEM_METRIC_FIELDS = tuple(SystemMetrics.__dataclass_fields__)


# Metrics a session pays on both replicas when its sub-agents run on another model; every other
# metric is the main agent's, and the session is feasible only where both replicas are.
SUB_AGENT_ADDED: tuple[str, ...] = ("usd_per_session",)


def with_sub_agents(main: SystemMetrics, sub: SystemMetrics) -> SystemMetrics:
    """A session whose sub-agent requests run on their own replica of the same system with a
    smaller model (the seed: sub-agents "can also run on smaller models"): it pays for both
    replicas (``SUB_AGENT_ADDED``) and is feasible only where both are. The rule is this
    function and that tuple: batched evaluation calls it, ``Stack.jacobian`` applies the
    tuple to values and derivatives."""
    return eqx.tree_at(
        lambda m: [getattr(m, k) for k in SUB_AGENT_ADDED] + [m.feasible],
        main,
        [getattr(main, k) + getattr(sub, k) for k in SUB_AGENT_ADDED]
        + [main.feasible * sub.feasible],
    )
