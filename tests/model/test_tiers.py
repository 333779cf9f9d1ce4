"""Cache tiers: hit rate from capacity, monotonicity, and the restore-vs-recompute crossover."""

import jax
import jax.numpy as jnp
import numpy as np

from dse.model.tiers import LINK_UTILIZATION, TierHits, restore_plan, tier_hits

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


def _plan(hits, isl, link, *, rate=1.0, total=1e15, recompute=20e-6, bpt=70_000.0):
    return restore_plan(hits, _f(isl), _f(bpt), _f(link), _f(link), _f(recompute), _f(rate),
                        _f(total), _f(total))  # fmt: skip


def test_restore_vs_recompute_crossover():
    # Every input token a host hit (no misses to hide a restore under): 100K tokens at 70
    # KB/token (DeepSeek-V3 BF16 MLA, 7 GB). Restoring over a fast link beats recomputing at
    # 20 us/token; over a slow link recompute wins. The crossover is where bytes/bandwidth equals
    # tokens x recompute time (Mooncake FAST'25 eq. 1-2).
    hits = TierHits(_f(0.0), _f(1.0), _f(0.0))
    tokens, bytes_per_token, recompute = 100_000.0, 70_000.0, 20e-6
    crossover = bytes_per_token / recompute  # bytes/s
    fast, slow = _plan(hits, tokens, 2 * crossover), _plan(hits, tokens, crossover / 2)
    assert float(fast.recompute_tokens) == 0.0 and float(fast.seconds) > 0.0
    assert float(slow.recompute_tokens) == tokens and float(slow.host_bytes) == 0.0
    # restore time never exceeds what recomputing would have cost
    assert float(fast.seconds) <= tokens * recompute + 1e-4


def test_a_restore_hidden_under_the_prefill_is_taken():
    # 300 storage tokens (latency 100 us > their 6 us of compute) beside 9,700 misses: the
    # restore hides under the misses' 194 ms prefill, so restoring costs nothing.
    hits = TierHits(_f(0.0), _f(0.0), _f(0.03))
    plan = _plan(hits, 10_000.0, 1e9)
    assert float(plan.recompute_tokens) == 0.0 and float(plan.storage_bytes) > 0.0
    alone = _plan(TierHits(_f(0.0), _f(0.0), _f(1.0)), 300.0, 1e9)  # nothing to hide under
    assert float(alone.recompute_tokens) == 300.0


def test_restores_beyond_the_link_are_recomputed():
    # 50 req/s x 5,000 storage tokens x 70 KB = 17.5 GB/s asked of a 7 GB/s storage tier: it
    # carries LINK_UTILIZATION of that, the rest is recomputed.
    hits = TierHits(_f(0.0), _f(0.0), _f(0.5))
    plan = _plan(hits, 10_000.0, 1e12, rate=50.0, total=7e9)
    restored = float(plan.storage_bytes) / 70_000.0
    assert abs(50.0 * float(plan.storage_bytes) - LINK_UTILIZATION * 7e9) < 1.0
    assert abs(restored + float(plan.recompute_tokens) - 5_000.0) < 1e-6
    assert float(_plan(hits, 10_000.0, 1e12, rate=1.0, total=7e9).recompute_tokens) == 0.0


def test_hit_rate_is_differentiable_in_capacity():
    g = jax.grad(lambda c: _hits(c, 0.0, 0.0).total)(_f(3e5))
    assert np.isfinite(float(g)) and float(g) > 0
