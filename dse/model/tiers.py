"""Prompt-cache tiers: where reusable prefixes live, how often they are found, what a hit costs.

Three tiers hold KV blocks of past requests (NVIDIA Dynamo KVBM's G1/G2/G3, Mooncake's pool):

1. **HBM**: whatever accelerator memory the running batch leaves free in the pool that runs
   prefill (an emergent capacity: a bigger batch leaves less room for the cache);
2. **host memory** of the CPUs next to the GPUs (Grace/Vera over NVLink-C2C, x86 over PCIe),
   ``host_gb_per_gpu`` per GPU, restored at the per-GPU host bandwidth;
3. **context storage** (BlueField-4 CMX / NVMe-oF), ``storage_tb`` in all, restored at
   ``storage_gbs`` (never faster than the prefill worker's NICs).

The hit rate is an *output*: the workload profile's LRU hit curve (``dse.workload``) gives the
token-weighted hit fraction as a function of cache capacity per unit of request rate
(token-seconds), so ``H((C_1 + ... + C_t) / lambda)`` is the fraction found in tiers ``1..t``
(LRU inclusion: a bigger cache holds everything a smaller one would). More capacity never
lowers the hit rate; more load at equal capacity does.

A hit in a lower tier is restored or recomputed, whichever is faster for the engine (Mooncake
FAST'25 eq. 1-2, workloads.md §4): restore moves ``tokens * kv_bytes`` over the tier's link;
recompute costs prefill time. Restores overlap layer by layer with the prefill of the uncached
tokens (LMCache, Mooncake), so they lengthen TTFT only when they take longer than that prefill.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax.numpy as jnp
from jax import Array

from .architecture import Architecture
from .layer import kv_bytes_per_token_layer
from .numerics import safe_div

# Fixed cost of one restore (ASSUMPTION): a host DMA setup is ~10 us (the host link's own hop,
# ``Hardware.host_link_hop_us``, is added by the system model); a context-storage read over
# NVMe-oF / RDMA adds a network round trip and a flash read, ~100 us.
HOST_LATENCY_S = 10e-6
STORAGE_LATENCY_S = 100e-6


def kv_bytes_per_token(arch: Architecture, kv_bits: Array, context: Array) -> Array:
    """KV bytes one cached token takes over all layers (sliding-window layers keep at most the
    window, averaged over a ``context``-token prompt)."""
    per_layer = kv_bytes_per_token_layer(arch, kv_bits)
    window_share = jnp.where(
        arch.sliding_window > 0,
        jnp.minimum(1.0, safe_div(arch.sliding_window, jnp.maximum(context, 1.0), 1.0)),
        1.0,
    )
    layers = arch.num_layers - arch.num_sliding_layers + arch.num_sliding_layers * window_share
    return per_layer * layers


class TierHits(NamedTuple):
    hbm: Array  # fraction of input tokens found in each tier
    host: Array
    storage: Array

    @property
    def total(self) -> Array:
        return self.hbm + self.host + self.storage


def hit_fraction(cache_grid: Array, hit_curve: Array, token_seconds: Array) -> Array:
    """Token-weighted hit fraction at ``token_seconds`` of cache per request/s (piecewise
    linear in the profile's grid, flat beyond its last point)."""
    x = jnp.clip(token_seconds, 0.0, cache_grid[-1])
    return jnp.interp(x, cache_grid, hit_curve)


def tier_hits(
    cache_grid: Array,
    hit_curve: Array,
    capacity_tokens: tuple[Array, Array, Array],
    request_rate: Array,
    enabled: Array,
) -> TierHits:
    """Hits per tier for capacities (tokens) at ``request_rate`` (requests/s)."""
    lam = jnp.maximum(request_rate, 1e-12)
    c1, c2, c3 = (jnp.maximum(c, 0.0) for c in capacity_tokens)
    h1 = hit_fraction(cache_grid, hit_curve, c1 / lam)
    h12 = hit_fraction(cache_grid, hit_curve, (c1 + c2) / lam)
    h123 = hit_fraction(cache_grid, hit_curve, (c1 + c2 + c3) / lam)
    on = enabled > 0
    zero = jnp.zeros_like(h1)
    return TierHits(
        jnp.where(on, h1, zero),
        jnp.where(on, jnp.maximum(h12 - h1, 0.0), zero),
        jnp.where(on, jnp.maximum(h123 - h12, 0.0), zero),
    )


class Restore(NamedTuple):
    seconds: Array  # critical-path time to bring restored prefixes back, per request
    recompute_tokens: Array  # lower-tier hits recomputed instead, per request
    storage_bytes: Array  # bytes read from context storage per request (bandwidth load)
    host_bytes: Array


# Share of a tier link's bandwidth restores may take at steady state (ASSUMPTION: the headroom
# the prefill pool keeps, system.PREFILL_UTILIZATION; a link run at 100 % queues without bound).
LINK_UTILIZATION = 0.8


def restore_plan(
    hits: TierHits,
    input_tokens: Array,
    bytes_per_token: Array,
    host_bandwidth: Array,
    storage_bandwidth: Array,
    recompute_s_per_token: Array,
    request_rate: Array,
    host_link_total: Array,
    storage_link_total: Array,
    *,
    host_latency: Array | float = HOST_LATENCY_S,
) -> Restore:
    """Per request: for each lower tier, restore its hit tokens or recompute them, whichever
    gives the shorter critical path (an engine with a load-vs-recompute policy; Mooncake
    FAST'25 §5, eq. 1-2).

    Restores overlap the prefill of the tokens that are computed anyway (misses and recomputed
    hits) layer by layer, so the critical path of a choice is ``max(prefill, restores)``; a
    restore that hides under the prefill is free, however slow per token. (Comparing a tier's
    restore with the recompute of that tier's tokens alone sent the few tokens left in storage
    to be recomputed, as the restore's fixed 100 us exceeded their compute, although the
    ~3,200-token prefill beside them hid it: more HBM then lowered throughput.)

    Each tier link carries at most ``LINK_UTILIZATION`` of its aggregate bandwidth
    (``*_link_total``, bytes/s for the whole system) at ``request_rate``; hits beyond that are
    recomputed (an engine restores what the link carries; it does not stall on it).
    ``host_latency``: fixed seconds of one host restore (the system model passes the DMA
    set-up plus the accelerator's ``host_link_hop_us``).
    """
    misses = input_tokens * jnp.maximum(1.0 - hits.total, 0.0)
    rate = jnp.maximum(request_rate, 0.0)

    def carried(tokens, link_total):
        # Share of a tier's hits its link can restore at this rate (<= 1; safe at no demand).
        demand = rate * tokens * bytes_per_token
        return jnp.clip(safe_div(LINK_UTILIZATION * link_total, demand, 1.0), 0.0, 1.0)

    host_tokens = hits.host * input_tokens * carried(hits.host * input_tokens, host_link_total)
    storage_tokens = (
        hits.storage * input_tokens * carried(hits.storage * input_tokens, storage_link_total)
    )
    t_host = safe_div(host_tokens * bytes_per_token, host_bandwidth, 1e9) + host_latency
    t_storage = (
        safe_div(storage_tokens * bytes_per_token, storage_bandwidth, 1e9) + STORAGE_LATENCY_S
    )
    lower = (hits.host + hits.storage) * input_tokens

    def path(restore_host, restore_storage):
        restored = jnp.where(restore_host, host_tokens, 0.0) + jnp.where(
            restore_storage, storage_tokens, 0.0
        )
        seconds = jnp.where(restore_host, t_host, 0.0) + jnp.where(restore_storage, t_storage, 0.0)
        prefill = (misses + lower - restored) * recompute_s_per_token
        return jnp.maximum(prefill, seconds), seconds, lower - restored

    # The four choices, best first on ties (restoring keeps the accelerators free): the one
    # with the shortest critical path wins.
    has_host, has_storage = host_tokens > 0.0, storage_tokens > 0.0
    choices = [
        (has_host, has_storage),
        (has_host, jnp.zeros_like(has_storage)),
        (jnp.zeros_like(has_host), has_storage),
        (jnp.zeros_like(has_host), jnp.zeros_like(has_storage)),
    ]
    options = [(*path(h, s), h, s) for h, s in choices]
    best = functools.reduce(
        lambda a, b: tuple(jnp.where(b[0] < a[0], y, x) for x, y in zip(a, b)), options
    )
    _, seconds, recompute, restore_host, restore_storage = best
    return Restore(
        seconds=seconds,
        recompute_tokens=recompute,
        storage_bytes=jnp.where(restore_storage, storage_tokens * bytes_per_token, 0.0),
        host_bytes=jnp.where(restore_host, host_tokens * bytes_per_token, 0.0),
    )
