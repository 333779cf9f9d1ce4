"""Cache hit-rate curves: exact agreement with a brute-force LRU + TTL simulation, and the
properties the serving model relies on (0 at zero capacity, nondecreasing, the unlimited-cache
limit at large capacity, a shorter TTL never helps, load-normalised capacity transfers)."""

from collections import OrderedDict

import numpy as np
import pandas as pd
import pytest

from dse.workload import (
    CACHE_GRID_POINTS,
    CACHE_GRID_TOKEN_S,
    hit_curve,
    infinite_hit_rate,
    load_preset,
    request_reuse,
    simulate_population,
)
from dse.workload.stack import stack_depths


def _expire(cache: OrderedDict, now: float, ttl: float) -> None:
    while cache and now - next(iter(cache.values()))[1] > ttl:
        cache.popitem(last=False)


def _evict(cache: OrderedDict, capacity: int) -> None:
    total = sum(size for size, _ in cache.values())
    while total > capacity:
        total -= cache.popitem(last=False)[1][0]


def brute_force_objects(df: pd.DataFrame, capacity: int, ttl: float) -> int:
    """Token-granular LRU: each agent context is tokens (agent, epoch, i); a request hits the
    leading tokens of its cached prefix still present, then touches its prompt tail first."""
    cache: OrderedDict = OrderedDict()
    epoch: dict = {}
    hits = 0
    for r in df.sort_values("t_start_s", kind="stable").itertuples():
        _expire(cache, r.t_start_s, ttl)
        if r.cached_prefix_tokens == 0:
            epoch[r.agent_id] = epoch.get(r.agent_id, -1) + 1
        key = (r.agent_id, epoch[r.agent_id])
        k = 0
        while k < r.cached_prefix_tokens and (key, k) in cache:
            k += 1
        hits += k
        for i in reversed(range(r.input_tokens)):
            cache[(key, i)] = (1, r.t_start_s)
            cache.move_to_end((key, i))
        _evict(cache, capacity)
    return hits


def brute_force_blocks(df: pd.DataFrame, capacity: int, ttl: float, sizes: dict) -> int:
    """Block LRU keyed by hash id; leading present blocks hit; touched tail first."""
    cache: OrderedDict = OrderedDict()
    hits = 0
    for r in df.sort_values("t_start_s", kind="stable").itertuples():
        _expire(cache, r.t_start_s, ttl)
        for h in r.hash_ids:
            if h not in cache:
                break
            hits += sizes[h]
        for h in reversed(r.hash_ids):
            cache[h] = (sizes[h], r.t_start_s)
            cache.move_to_end(h)
        _evict(cache, capacity)
    return hits


def random_agents(seed: int, n: int = 160) -> pd.DataFrame:
    """Small-token agent contexts that grow, sometimes reset (compaction), at random times."""
    rng = np.random.default_rng(seed)
    rows, ctx = [], {}
    t = 0.0
    for _ in range(n):
        t += float(rng.exponential(3.0))
        a = int(rng.integers(0, 6))
        prev = ctx.get(a, 0)
        reset = prev == 0 or rng.random() < 0.08
        size = int(rng.integers(3, 12)) if reset else prev + int(rng.integers(0, 9))
        rows.append((t, a, size, 0 if reset else prev))
        ctx[a] = size
    cols = ["t_start_s", "agent_id", "input_tokens", "cached_prefix_tokens"]
    return pd.DataFrame(rows, columns=cols)


BLOCK = 4  # tokens per hash block in the synthetic traces


def random_chains(seed: int, n: int = 150):
    """Mooncake-like requests with BLOCK-token blocks: each extends the full blocks of an earlier
    request (conversation trees under a shared root) and may end in a partial block with its
    own id; some repeat an earlier prompt exactly (regenerations reuse its partial block)."""
    rng = np.random.default_rng(seed)
    sizes, chains, rows, t, next_id = {0: BLOCK}, [[0]], [], 0.0, 1
    for _ in range(n):
        t += float(rng.exponential(2.0))
        base = chains[int(rng.integers(len(chains)))]
        if rng.random() < 0.15:
            chain = base
        else:
            full = [h for h in base if sizes[h] == BLOCK]
            chain = full[: int(rng.integers(1, len(full) + 1))]
            for _ in range(int(rng.integers(1, 5))):
                sizes[next_id], next_id = BLOCK, next_id + 1
                chain = chain + [next_id - 1]
            if rng.random() < 0.6:
                sizes[next_id], next_id = int(rng.integers(1, BLOCK)), next_id + 1
                chain = chain + [next_id - 1]
        chains.append(chain)
        rows.append((t, sum(sizes[h] for h in chain), chain))
    return pd.DataFrame(rows, columns=["t_start_s", "input_tokens", "hash_ids"]), sizes


def test_stack_depths_match_a_naive_count():
    rng = np.random.default_rng(0)
    for _ in range(100):
        n = int(rng.integers(1, 50))
        keys, sizes = rng.integers(0, 8, n), rng.integers(1, 9, n)
        depth, prev = stack_depths(keys, sizes)
        for j in range(n):
            latest = {keys[i]: sizes[i] for i in range(prev[j] + 1, j)}
            assert depth[j] == (sum(latest.values()) if prev[j] >= 0 else -1)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("ttl", [np.inf, 15.0])
def test_objects_agree_with_brute_force_lru(seed, ttl):
    df = random_agents(seed)
    reuse = request_reuse(df, ttl)
    for capacity in [0, 5, 17, 40, 90, 10_000]:
        assert reuse.hit_tokens(capacity) == brute_force_objects(df, capacity, ttl)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("ttl", [np.inf, 10.0])
def test_blocks_agree_with_brute_force_lru(seed, ttl):
    df, sizes = random_chains(seed)
    reuse = request_reuse(df, ttl, block_tokens=BLOCK)
    for capacity in [0, 4, 9, 25, 60, 10_000]:
        assert reuse.hit_tokens(capacity) == brute_force_blocks(df, capacity, ttl, sizes)


def test_generated_population_agrees_with_brute_force():
    """A scaled-down chat_tools population (tokens / 400, prefixes recomputed) through both."""
    p = load_preset("chat_tools")
    df = simulate_population(p, 4, 2.0, np.random.default_rng(3))
    df = df[df["t_start_s"] < 2_000].copy()
    df["input_tokens"] = np.maximum(1, df["input_tokens"] // 400)
    prev = df.groupby("agent_key")["input_tokens"].shift(1).fillna(0).astype(np.int64)
    df["cached_prefix_tokens"] = prev
    df["agent_id"] = df["agent_key"]
    reuse = request_reuse(df, p.prompt_cache_ttl_s)
    for capacity in [0, 30, 120, 400]:
        brute = brute_force_objects(df, capacity, p.prompt_cache_ttl_s)
        assert reuse.hit_tokens(capacity) == brute


def test_row_order_does_not_matter():
    df = random_agents(5)
    shuffled = df.sample(frac=1.0, random_state=0)
    a, b = request_reuse(df, 20.0), request_reuse(shuffled, 20.0)
    assert np.array_equal(a.hit_tokens([0, 9, 50, np.inf]), b.hit_tokens([0, 9, 50, np.inf]))
    chains, _ = random_chains(5)
    a = request_reuse(chains, 8.0, block_tokens=BLOCK)
    b = request_reuse(chains.sample(frac=1.0, random_state=0), 8.0, block_tokens=BLOCK)
    assert np.array_equal(a.hit_tokens([0, 9, 50, np.inf]), b.hit_tokens([0, 9, 50, np.inf]))


@pytest.fixture(scope="module")
def agentic():
    p = load_preset("agentic_coding")
    return p, simulate_population(p, 60, 8.0, np.random.default_rng(0))


def test_curve_shape_and_limits(agentic):
    p, df = agentic
    grid, hit = hit_curve(df, p.prompt_cache_ttl_s)
    assert len(grid) == len(hit) == CACHE_GRID_POINTS and np.array_equal(grid, CACHE_GRID_TOKEN_S)
    assert grid[0] == 0 and hit[0] == 0 and np.all(np.diff(grid) > 0)
    assert np.all(np.diff(hit) >= 0)
    assert hit[-1] == pytest.approx(infinite_hit_rate(df, p.prompt_cache_ttl_s), abs=1e-12)
    assert 0.85 <= hit[-1] <= 0.95  # agentic coding: 85-98 % (workloads.md §9)
    assert hit[np.searchsorted(grid, 1e4)] < 0.1 < 0.8 < hit[np.searchsorted(grid, 1e7)]


def test_shorter_ttl_never_hits_more(agentic):
    _, df = agentic
    curves = [hit_curve(df, ttl)[1] for ttl in (0.0, 2.0, 30.0, 300.0, 3600.0, np.inf)]
    for short, long in zip(curves, curves[1:], strict=False):
        assert np.all(short <= long + 1e-15)
    assert curves[0][-1] == 0.0 and curves[-2][-1] > curves[1][-1]


def test_capacity_per_request_rate_transfers_across_load():
    """Same preset at 4x the concurrency: the half-limit point in token-seconds moves < 35 %."""
    p = load_preset("agentic_coding")
    half = []
    for conc in (4.0, 16.0):
        df = simulate_population(p, 80, conc, np.random.default_rng(1))
        grid, hit = hit_curve(df, p.prompt_cache_ttl_s)
        half.append(np.interp(0.5 * hit[-1], hit, grid))
    assert abs(np.log(half[1] / half[0])) < np.log(1.35)
