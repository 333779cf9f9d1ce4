"""API-style prompt-caching economics: what a provider's price list charges for a session.

Per call (workloads.md §2): ``cost = p_in * (w * N_write + r * N_read + N_plain) + p_out * N_out``
with ``N_read`` the cached prefix read back (``r`` = 0.1 at every major provider), ``N_write``
the newly cached tokens where the provider charges writes (Anthropic 1.25x for a 5-minute TTL,
2x for 1 hour; OpenAI <= GPT-5.5 and Gemini implicit caching bill them as plain input, w = 1),
and ``N_plain`` the rest of the prompt. Gemini's explicit caches also bill storage per
million tokens per hour. Presets with sources: ``conf/cost/api_prices.yaml``.

The seed (NVIDIA, "Building for the Rising Complexity of Agentic Systems", May 2026): "cache
hits [are discounted] by approximately 90 %, so at a 95 % cache hit rate, input processing cost
drops by about 85 %; without prompt caching, the cost here would be roughly 6x higher". With
``input_cost_ratio`` (every missed token written to the cache, the Claude Code pattern):

* writes charged 1.25x: 0.95 * 0.1 + 0.05 * 1.25 = 0.1575 → 84.25 % lower, 6.35x without caching;
* writes free (w = 1): 0.95 * 0.1 + 0.05 = 0.145 → 85.5 % lower, 6.90x without caching.

Only the write-charging convention rounds to both of the seed's figures ("about 85 %", "roughly
6x"); the free-write one rounds to 85 % but to 7x. The seed's session is Claude Code on
Anthropic's API, which charges 1.25x writes, so that is the convention it most likely used.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jax import Array

from .numerics import safe_div


class ApiPrices(eqx.Module):
    """One provider's list prices (USD per million tokens) and cache multipliers."""

    input_usd_per_mtok: Array
    output_usd_per_mtok: Array
    cache_read_multiplier: Array  # price of a cache hit / base input price
    cache_write_multiplier: Array  # price of a cache write / base input; 1.0 = billed as plain
    cache_storage_usd_per_mtok_hour: Array  # explicit-cache storage (Gemini); 0 elsewhere


API_PRICE_FIELDS: tuple[str, ...] = tuple(ApiPrices.__dataclass_fields__)


def session_api_cost(
    input_tokens: Array,
    cached_tokens: Array,
    written_tokens: Array,
    output_tokens: Array,
    prices: ApiPrices,
    cached_mtok_hours: Array | float = 0.0,
) -> Array:
    """USD a provider bills for a call or a whole session.

    ``input_tokens`` is the whole prompt (summed over calls), of which ``cached_tokens`` were
    read from cache and ``written_tokens`` written to it (Anthropic's ``cache_read_input_tokens``
    and ``cache_creation_input_tokens``); the rest is plain input. ``cached_mtok_hours``
    (million tokens x hours held) is billed only where storage is priced (explicit caches)."""
    plain = jnp.maximum(input_tokens - cached_tokens - written_tokens, 0.0)
    weighted_input = (
        plain
        + prices.cache_read_multiplier * cached_tokens
        + prices.cache_write_multiplier * written_tokens
    )
    tokens = prices.input_usd_per_mtok * weighted_input + prices.output_usd_per_mtok * output_tokens
    return tokens / 1e6 + prices.cache_storage_usd_per_mtok_hour * cached_mtok_hours


def input_cost_ratio(
    hit_rate: Array, prices: ApiPrices, write_fraction: Array | float = 1.0
) -> Array:
    """Input cost with prompt caching / without, per prompt token.

    A ``hit_rate`` share (token-weighted) is read at ``r``; of the misses, ``write_fraction`` is
    written to the cache at ``w`` (1.0: every new token becomes the next call's prefix, as in
    agent loops) and the rest billed plain: ``h*r + (1-h) * (f*w + 1-f)``."""
    miss = 1.0 - hit_rate
    miss_price = write_fraction * prices.cache_write_multiplier + (1.0 - write_fraction)
    return hit_rate * prices.cache_read_multiplier + miss * miss_price


def caching_saving(
    hit_rate: Array, prices: ApiPrices, write_fraction: Array | float = 1.0
) -> Array:
    """Fraction of input cost that prompt caching saves (the seed's "about 85 %")."""
    return 1.0 - input_cost_ratio(hit_rate, prices, write_fraction)


def no_cache_multiplier(
    hit_rate: Array, prices: ApiPrices, write_fraction: Array | float = 1.0
) -> Array:
    """How many times more input costs without caching (the seed's "roughly 6x")."""
    ratio = input_cost_ratio(hit_rate, prices, write_fraction)
    return safe_div(jnp.ones_like(ratio), ratio)


def break_even_reads(prices: ApiPrices) -> Array:
    """Reads of a cached prefix after which caching it paid for its write premium:
    ``w + r*n < 1 + n`` ⇔ ``n > (w - 1) / (1 - r)`` (0.28 for Anthropic 5-min: the first re-use
    pays, workloads.md §2)."""
    return safe_div(prices.cache_write_multiplier - 1.0, 1.0 - prices.cache_read_multiplier)
