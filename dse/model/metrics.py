"""What the model returns for one design point, and the codes it uses for reasons and bounds."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jax import Array

from .roofline import Cost

# Dominant limiter of the step that sets the reported latency.
BOUNDS: tuple[str, ...] = ("compute", "memory", "network", "overhead", "prefill_pool")


def bound_code(cost: Cost) -> Array:
    shares = jnp.stack([cost.compute, cost.memory, cost.network, cost.overhead])
    return jnp.argmax(shares).astype(jnp.float64)


class Metrics(eqx.Module):
    """Per design point. Times in ms, rates per second, memory in GB; never NaN."""

    ttft_ms: Array  # means
    tpot_ms: Array
    ttft_ms_p50: Array  # percentiles over requests (``tails.py``; = the mean where nothing
    ttft_ms_p90: Array  # varies, e.g. a phase-isolated static batch)
    ttft_ms_p99: Array
    tpot_ms_p50: Array
    tpot_ms_p90: Array
    tpot_ms_p99: Array
    tok_s_user: Array
    tok_s_gpu: Array  # output tokens/s per GPU
    input_tok_s_gpu: Array  # uncached prompt tokens/s per GPU
    memory_gb: Array  # per GPU
    batch: Array  # sequences running (whole instance / decode worker)
    feasible: Array  # 1.0 or 0.0
    reason: Array  # REASONS code
    bound: Array  # index into BOUNDS
    compute_s: Array  # breakdown of the step that sets the latency
    memory_s: Array
    network_s: Array
    overhead_s: Array
    max_batch: Array  # largest number of sequences that fits

    def as_tuple(self) -> tuple[Array, ...]:
        return tuple(getattr(self, f) for f in METRIC_FIELDS)


METRIC_FIELDS = tuple(Metrics.__dataclass_fields__)
