"""Cache tiers: hit rate from capacity, monotonicity, and the restore-vs-recompute crossover."""

import jax
import jax.numpy as jnp
import numpy as np

from dse.model.tiers import restore_plan, tier_hits

GRID = jnp.asarray([0.0, 1e4, 1e5, 1e6, 1e7])
CURVE = jnp.asarray([0.0, 0.3, 0.7, 0.9, 0.95])


def _f(x):
    return jnp.asarray(x, dtype=jnp.float64)


def _hits(c1, c2, c3, rate=10.0, enabled=1.0):
    return tier_hits(GRID, CURVE, (_f(c1), _f(c2), _f(c3)), _f(rate), _f(enabled))


def test_more_capacity_never_lowers_the_hit_rate():
    rng = np.random.default_rng(0)
    for _ in range(200):
        c = rng.uniform(0, 2e7, size=3)
        extra = rng.uniform(0, 1e7, size=3)
        base = float(_hits(*c).total)
        for i in range(3):
            more = c.copy()
            more[i] += extra[i]
            assert float(_hits(*more).total) >= base - 1e-12


def test_more_load_at_equal_capacity_never_raises_the_hit_rate():
    assert float(_hits(1e6, 0, 0, rate=100.0).total) <= float(_hits(1e6, 0, 0, rate=10.0).total)


def test_tiers_partition_the_hits_and_saturate_at_the_infinite_cache_rate():
    h = _hits(1e5, 1e6, 1e9)
    assert float(h.hbm) == 0.3  # 1e5 tokens / 10 req/s = 1e4 token-seconds
    assert abs(float(h.total) - 0.95) < 1e-12
    off = _hits(1e5, 1e6, 1e9, enabled=0.0)
    assert float(off.total) == 0.0


def test_restore_vs_recompute_crossover():
    # A host hit of 50K tokens at 70 KB/token (DeepSeek-V3 BF16 MLA, 3.5 GB): restoring over a
    # fast link beats recomputing at 20 us/token; over a slow link recompute wins. The crossover
    # is where bytes/bandwidth equals tokens x recompute time (Mooncake FAST'25 eq. 1-2).
    hits = tier_hits(GRID, CURVE, (_f(0), _f(1e9), _f(0)), _f(10.0), _f(1.0))
    tokens = 100_000 * float(hits.host)
    bytes_per_token, recompute = 70_000.0, 20e-6
    crossover = tokens * bytes_per_token / (tokens * recompute)  # bytes/s
    fast = restore_plan(
        hits, _f(100_000), _f(bytes_per_token), _f(2 * crossover), _f(1e9), _f(recompute)
    )
    slow = restore_plan(
        hits, _f(100_000), _f(bytes_per_token), _f(crossover / 2), _f(1e9), _f(recompute)
    )
    assert float(fast.recompute_tokens) == 0.0 and float(fast.seconds) > 0.0
    assert float(slow.recompute_tokens) == tokens and float(slow.host_bytes) == 0.0
    # restore time never exceeds what recomputing would have cost
    assert float(fast.seconds) <= tokens * recompute + 1e-4


def test_hit_rate_is_differentiable_in_capacity():
    g = jax.grad(lambda c: _hits(c, 0.0, 0.0).total)(_f(3e5))
    assert np.isfinite(float(g)) and float(g) > 0
