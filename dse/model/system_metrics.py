"""What a whole system returns for a workload, and its infeasibility reasons."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from .session_time import SESSION_FIELDS, RequestLatency, request_latency, session_fields

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
    ttft_ms_sd: Array  # standard deviation over requests
    tpot_ms_sd: Array  # of a request's mean TPOT (the decode's jitter as a request sees it)
    prefill_ms: Array  # the mean request's own prefill, part of ttft_ms
    tok_s_user: Array
    tok_s_user_p99: Array  # 1000 / tpot_ms_p99: the interactivity 99 % of requests get or beat
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
    session_minutes: Array  # wall time of an agent session on its critical path (session_time.py)
    session_minutes_p50: Array
    session_minutes_p95: Array
    session_ttft_minutes: Array  # the mean's parts on the critical path: TTFT,
    session_decode_minutes: Array  # decoding,
    session_fanout_minutes: Array  # and the main agent waiting on its sub-agents (all parts)
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


def _latency(m: SystemMetrics, profile) -> RequestLatency:
    """A replica's per-request latency model from its metrics and workload."""
    ms = 1e-3
    return request_latency(m.ttft_ms * ms, m.prefill_ms * ms, m.ttft_ms_sd * ms, m.tpot_ms * ms,
                           m.tpot_ms_sd * ms, profile.new_tokens, profile.new_tokens_cv)  # fmt: skip


# Session times of a batch of designs (one per latency row), compiled once per batch shape.
_sessions_of_designs = jax.jit(jax.vmap(session_fields, in_axes=(None, 0, 0)))


def with_sub_agents(
    main: SystemMetrics, sub: SystemMetrics, main_profile, sub_profile
) -> SystemMetrics:
    """A session whose sub-agent requests run on their own replica of the same system with a
    smaller model (the seed: sub-agents "can also run on smaller models"): it pays for both
    replicas (``SUB_AGENT_ADDED``), is feasible only where both are, and its wall time prices
    the main agent's calls at the main replica's latencies and the sub-agents' at the sub
    replica's (``SESSION_FIELDS``; both profiles carry the whole sessions' critical paths).
    Batched evaluation calls this; ``Stack.jacobian`` applies ``SUB_AGENT_ADDED`` to values
    and derivatives, and takes the session fields' values from here."""
    shape = jnp.shape(main.ttft_ms)
    flat = lambda lat: RequestLatency(*(jnp.ravel(jnp.broadcast_to(x, shape)) for x in lat))  # noqa: E731
    times = _sessions_of_designs(
        main_profile, flat(_latency(main, main_profile)), flat(_latency(sub, sub_profile))
    )
    times = {k: jnp.reshape(v, shape) for k, v in times.items()}
    names = [*SUB_AGENT_ADDED, "feasible", *SESSION_FIELDS]
    values = [getattr(main, k) + getattr(sub, k) for k in SUB_AGENT_ADDED]
    values += [main.feasible * sub.feasible, *(times[k] for k in SESSION_FIELDS)]
    return eqx.tree_at(lambda m: [getattr(m, k) for k in names], main, values)
