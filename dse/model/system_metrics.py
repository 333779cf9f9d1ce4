"""What a whole system returns for a workload, and its infeasibility reasons."""

from __future__ import annotations

import equinox as eqx
from jax import Array

# System-level reasons (codes continue the instance-level ones in ``metrics.REASONS``).
SYSTEM_REASONS: dict[str, float] = {
    "ok": 0.0,
    "weights_exceed_memory": 1.0,
    "no_sequence_fits": 3.0,
    "context_exceeds_memory": 5.0,
    "ffn_pool_too_small": 6.0,
    "prefill_pool_too_small": 7.0,
    "host_memory_exceeded": 8.0,
    "storage_bandwidth_exceeded": 9.0,
    "pool_smaller_than_worker": 10.0,
    "afd_needs_prefill_pool": 11.0,
}
SYSTEM_REASON_TEXT: dict[float, str] = {
    0.0: "",
    1.0: "decode/attention weights + workspace exceed usable memory per accelerator; use more "
    "accelerators per worker (tp/pp/ep), a lower weight precision, or attention-FFN disaggregation",
    3.0: "not even one sequence's KV cache fits beside the weights; use more accelerators or "
    "lower precision",
    5.0: "one sequence at the workload's p99 context does not fit in the decode/attention pool; "
    "use fp8/fp4 KV, more accelerators per worker, or a pool with more memory",
    6.0: "the FFN pool's share of the expert/MLP weights does not fit per chip; add ffn_units or "
    "ffn_pp",
    7.0: "weights + one prefill chunk do not fit on a prefill worker; raise prefill_tp/dp",
    8.0: "host_gb_per_gpu exceeds the host tier's memory per GPU; lower it or pick a bigger host",
    9.0: "KV restores from context storage exceed storage_gbs at this request rate; raise "
    "storage_gbs or host memory",
    10.0: "a pool has fewer accelerators than one of its workers (units < tp*pp*dp)",
    11.0: "attention-FFN disaggregation needs a prefill pool (prefill_units > 0)",
}

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

    ttft_ms: Array
    tpot_ms: Array
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
