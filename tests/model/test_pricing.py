"""Prompt-caching economics: the seed's figures (95 % hits, ~90 % read discount) and presets.

Seed: "at a 95 % cache hit rate, input processing cost drops by about 85 %; without prompt
caching, the cost here would be roughly 6x higher". Exact figures (every miss written):
writes at 1.25x → ratio 0.1575, 84.25 % lower, 6.35x; writes free → 0.145, 85.5 % lower, 6.90x.
"""

import jax
import jax.numpy as jnp
import pytest
import yaml

from dse.catalog import load_api_prices
from dse.catalog.costs import api_price_names
from dse.model.pricing import (
    API_PRICE_FIELDS,
    break_even_reads,
    caching_saving,
    input_cost_ratio,
    no_cache_multiplier,
    session_api_cost,
)

HIT = jnp.asarray(0.95, dtype=jnp.float64)


def f64(x):
    return jnp.asarray(x, dtype=jnp.float64)


def test_seed_95_percent_hits_cut_input_cost_by_about_85_percent():
    with_writes = load_api_prices("anthropic_5min")  # 1.25x writes
    free_writes = load_api_prices("openai_gpt5")  # writes billed as plain input
    assert float(input_cost_ratio(HIT, with_writes)) == pytest.approx(0.05 * 1.25 + 0.95 * 0.1)
    assert float(input_cost_ratio(HIT, free_writes)) == pytest.approx(0.05 + 0.095)
    assert float(caching_saving(HIT, with_writes)) == pytest.approx(0.8425)
    assert float(caching_saving(HIT, free_writes)) == pytest.approx(0.855)
    for p in (with_writes, free_writes):  # "about 85 %": both within 1 point
        assert abs(float(caching_saving(HIT, p)) - 0.85) <= 0.01


def test_seed_no_caching_costs_about_six_times_more():
    with_writes = float(no_cache_multiplier(HIT, load_api_prices("anthropic_5min")))
    free_writes = float(no_cache_multiplier(HIT, load_api_prices("openai_gpt5")))
    assert with_writes == pytest.approx(1 / 0.1575) and round(with_writes) == 6
    assert free_writes == pytest.approx(1 / 0.145) and round(free_writes) == 7
    # The write-charging convention is the one that rounds to both seed figures.


def test_write_fraction_interpolates_between_conventions():
    p = load_api_prices("anthropic_5min")
    none_written = float(input_cost_ratio(HIT, p, write_fraction=0.0))
    assert none_written == pytest.approx(0.145)
    assert float(input_cost_ratio(f64(0.0), p, write_fraction=0.0)) == pytest.approx(1.0)
    assert float(input_cost_ratio(f64(1.0), p)) == pytest.approx(0.1)


def test_one_hour_writes_cost_more_and_first_reuse_pays_for_the_5min_write():
    assert float(input_cost_ratio(HIT, load_api_prices("anthropic_1h"))) == pytest.approx(0.195)
    assert float(break_even_reads(load_api_prices("anthropic_5min"))) == pytest.approx(0.25 / 0.9)
    assert float(break_even_reads(load_api_prices("anthropic_1h"))) == pytest.approx(1 / 0.9)
    assert float(break_even_reads(load_api_prices("openai_gpt5"))) == 0.0


def test_session_cost_counts_reads_writes_plain_and_output():
    p = load_api_prices("anthropic_5min")
    cost = float(session_api_cost(f64(1e6), f64(9e5), f64(5e4), f64(1e4), p))
    expected = (5.0 * (5e4 + 0.1 * 9e5 + 1.25 * 5e4) + 25.0 * 1e4) / 1e6
    assert cost == pytest.approx(expected)
    uncached = float(session_api_cost(f64(1e6), f64(0.0), f64(0.0), f64(1e4), p))
    assert uncached == pytest.approx((5.0 * 1e6 + 25.0 * 1e4) / 1e6)
    # The seed's main agent: ~3.5 M input tokens at 95 % hits, misses written (Claude Code).
    seed = session_api_cost(f64(3.5e6), f64(0.95 * 3.5e6), f64(0.05 * 3.5e6), f64(0.0), p)
    assert float(seed) == pytest.approx(3.5 * 5.0 * 0.1575)


def test_explicit_cache_storage_is_billed_per_mtok_hour():
    p = load_api_prices("gemini_explicit")
    held = float(session_api_cost(f64(0.0), f64(0.0), f64(0.0), f64(0.0), p, f64(2.0)))
    assert held == pytest.approx(9.0)  # 2 M tokens held 1 h at $4.50
    assert float(session_api_cost(*(f64(0.0),) * 4, load_api_prices("gemini"), f64(2.0))) == 0.0


def test_cost_is_differentiable_in_the_hit_rate():
    p = load_api_prices("anthropic_5min")
    slope = float(jax.grad(input_cost_ratio)(HIT, p))
    assert slope == pytest.approx(0.1 - 1.25)  # each extra hit saves (w - r) of a token


def test_every_preset_is_sourced_and_complete(catalog):
    raw = yaml.safe_load((catalog.root / "cost" / "api_prices.yaml").read_text())
    names = api_price_names()
    assert {"anthropic_5min", "anthropic_1h", "openai_gpt5", "gemini"} <= set(names)
    for name in names:
        assert set(raw["presets"][name]) == set(API_PRICE_FIELDS)
        assert len(raw["sources"][name]) > 40
        assert 0 < float(load_api_prices(name).cache_read_multiplier) <= 0.25


def test_unknown_preset_and_bad_override_are_one_clear_error():
    with pytest.raises(ValueError, match="unknown API price list 'anthropic'.*anthropic_5min"):
        load_api_prices("anthropic")
    with pytest.raises(ValueError, match=r"cache_read_multiplier=-0\.1 is below 0"):
        load_api_prices("gemini", overrides={"cache_read_multiplier": -0.1})
    with pytest.raises(ValueError, match="did you mean 'cache_write_multiplier'"):
        load_api_prices("gemini", overrides={"cache_write_multiplyer": 1.0})
