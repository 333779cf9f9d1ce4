"""Prompt-cache hit rate as a function of cache capacity: LRU eviction with a TTL, token-weighted.

The serving model needs the hit rate as an *output* of cache capacity (workloads.md §9 note 2:
TRT-LLM's Coder trace falls from 0.97 to 0.73 hit at high concurrency). This module turns any
request table into that curve, exactly for LRU + TTL, for every capacity at once
(:mod:`dse.workload.stack`).

Cache model
-----------
* LRU at block granularity; a request looks up its prefix, then touches its whole prompt, and the
  blocks of one prompt are ordered head-most-recent, so LRU evicts the *tail* of a prefix first
  (vLLM frees a finished request's blocks in reverse order for this reason). What survives of a
  prefix is therefore always a leading run of it.
* TTL: content unused for more than ``ttl_s`` seconds is dropped; every use (hit or write)
  refreshes it (Anthropic's 5-minute TTL, workloads.md §2). All uses happen at request start.
* Because entries used more recently than a given entry are younger, the TTL never changes an
  entry's LRU depth; a prefix is reusable iff its age <= TTL and it is within capacity.

Generated sessions (the per-agent-object formulation): each agent's context is one object whose
cached prefix is the agent's previous prompt (``cached_prefix_tokens``; a compaction or a fresh
agent starts a new object). At a request, let ``D`` be the total size of the *other* objects used
since this agent's previous request (each at its latest size; dead objects left by compactions
count until evicted). The LRU stack holds those ``D`` tokens above this object's head, and its
blocks follow head first, so with capacity ``C`` the first ``C - D`` tokens survive:

    hit_tokens(C) = clip(C - D, 0, prefix)       (0 if the object expired)

Mooncake traces (``hash_ids`` column): each 512-token block is its own key, the request's blocks
are touched tail first, and block ``k`` hits iff every block ``0..k`` is present and alive, i.e.
iff ``C`` >= the running maximum of ``depth + size`` along the chain (partial last block counted
at its real size).

Capacity is normalised by load: ``cache_token_seconds = capacity_tokens / request_rate_per_s``.
For a steady mix of independent sessions, Little's law gives active sessions = session arrival
rate x session lifetime, so the tokens touched between two uses of a context (the depth ``D``)
grow in proportion to the request rate; the same curve then serves systems at any load.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dse.model.workload import CACHE_GRID_TOKEN_S
from dse.workload.stack import stack_depths

BLOCK_TOKENS = 512  # Mooncake hash-id block size


@dataclass(frozen=True)
class Reuse:
    """Reusable pieces of every request and the capacity each needs (request order as given)."""

    request: np.ndarray  # (m,) row position of the request the piece belongs to
    tokens: np.ndarray  # (m,) tokens reusable with an unlimited cache (TTL applied)
    depth: np.ndarray  # (m,) objects: tokens above the piece; blocks: capacity needed for a hit
    partial: bool  # objects: hit = clip(C - depth, 0, tokens); blocks: tokens * (depth <= C)
    input_tokens: np.ndarray  # (n,) prompt tokens of each request

    def per_request(self) -> np.ndarray:
        """Reusable (unlimited-capacity) tokens of each request, TTL applied."""
        n = len(self.input_tokens)
        return np.bincount(self.request, weights=self.tokens, minlength=n).astype(np.int64)

    def hit_tokens(self, capacity_tokens) -> np.ndarray:
        """Total hit tokens at each capacity (tokens, any shape, np.inf allowed; a capacity
        counts whole tokens). Integer arithmetic, so the curve is exactly nondecreasing."""
        cap = np.asarray(capacity_tokens, dtype=np.float64)
        enough = int((self.depth + self.tokens).max()) + 1 if len(self.depth) else 1
        unlimited = cap >= enough  # every piece fits (also np.inf)
        c = np.where(unlimited, 0.0, np.floor(np.maximum(cap, 0.0))).astype(np.int64)
        if self.partial:
            hit = _ramp_sum(c, self.depth) - _ramp_sum(c, self.depth + self.tokens)
        else:
            order = np.argsort(self.depth, kind="stable")
            cum = np.concatenate([[0], np.cumsum(self.tokens[order])])
            hit = cum[np.searchsorted(self.depth[order], c, side="right")]
        return np.where(unlimited, self.tokens.sum(), hit)


def _ramp_sum(cap: np.ndarray, start: np.ndarray) -> np.ndarray:
    """sum_i max(0, cap - start_i) for each capacity, via a sort (no n x G matrix)."""
    s = np.sort(start)
    cum = np.concatenate([[0], np.cumsum(s)])
    k = np.searchsorted(s, cap, side="left")
    return cap * k - cum[k]


def _object_keys(df: pd.DataFrame) -> np.ndarray:
    """One key per cached object: (agent, epoch), a new epoch at every uncached request
    (``df`` in time order)."""
    if "agent_key" in df:
        agent = df["agent_key"].to_numpy()
    elif "session" in df:
        agent = pd.MultiIndex.from_arrays([df["session"], df["agent_id"]]).factorize()[0]
    else:
        agent = df["agent_id"].to_numpy()
    reset = (df["cached_prefix_tokens"].to_numpy() <= 0).astype(np.int64)
    epoch = pd.Series(reset).groupby(np.asarray(agent)).cumsum().to_numpy()
    return pd.MultiIndex.from_arrays([agent, epoch]).factorize()[0]


def _object_reuse(df: pd.DataFrame, ttl_s: float) -> Reuse:
    t = df["t_start_s"].to_numpy(dtype=np.float64)
    order = np.argsort(t, kind="stable")
    size = df["input_tokens"].to_numpy(dtype=np.int64)[order]
    prefix = df["cached_prefix_tokens"].to_numpy(dtype=np.int64)[order]
    depth, prev = stack_depths(_object_keys(df.iloc[order]), size)
    ts = t[order]
    ok = prev >= 0
    alive = np.zeros(len(t), dtype=bool)
    alive[ok] = (ts[ok] - ts[prev[ok]] <= ttl_s) & (prefix[ok] > 0)
    tokens = np.minimum(prefix, np.where(ok, size[np.maximum(prev, 0)], 0))
    sel = np.flatnonzero(alive & (tokens > 0))
    return Reuse(order[sel], tokens[sel], depth[sel], True, df["input_tokens"].to_numpy(np.int64))


def _block_reuse(df: pd.DataFrame, ttl_s: float, block: int) -> Reuse:
    t = df["t_start_s"].to_numpy(dtype=np.float64)
    order = np.argsort(t, kind="stable")
    ids = [np.asarray(h, dtype=np.int64) for h in df["hash_ids"].to_numpy()[order]]
    lengths = df["input_tokens"].to_numpy(dtype=np.int64)[order]
    nblk = np.array([len(h) for h in ids], dtype=np.int64)
    start = np.concatenate([[0], np.cumsum(nblk)[:-1]])
    req = np.repeat(np.arange(len(ids)), nblk)  # chain (head-first) order
    k = np.arange(nblk.sum()) - start[req]
    last = lengths - block * (nblk - 1)
    size = np.where(k == nblk[req] - 1, np.clip(last[req], 1, block), block)
    access = start[req] + nblk[req] - 1 - k  # touched tail first: head ends most recent
    keys = np.empty(len(k), dtype=np.int64)
    keys[access] = np.concatenate(ids)
    sizes = np.empty_like(keys)
    sizes[access] = size
    areq = np.empty_like(keys)
    areq[access] = req
    depth_a, prev_a = stack_depths(keys, sizes, query=start[areq])
    ta = t[order][areq]
    alive = (prev_a >= 0) & (ta - ta[np.maximum(prev_a, 0)] <= ttl_s)
    never = np.int64(sizes.sum() + 1)  # beyond any real depth
    need = np.where(alive, depth_a + sizes, never)[access]  # back to chain order
    # running max along each chain: shift each request by a constant larger than any value
    shift = req.astype(np.int64) * (never + 1)
    need = np.maximum.accumulate(need + shift) - shift
    sel = np.flatnonzero(need < never)
    inputs = df["input_tokens"].to_numpy(np.int64)
    return Reuse(order[req[sel]], size[sel], need[sel], False, inputs)


def request_reuse(
    requests: pd.DataFrame, ttl_s: float = np.inf, block_tokens: int = BLOCK_TOKENS
) -> Reuse:
    """Reuse geometry of a request table: generated sessions (agent objects) or a trace
    (``hash_ids`` column, one id per ``block_tokens`` tokens, the last block partial)."""
    if len(requests) == 0:
        raise ValueError("empty request table")
    if "hash_ids" in requests:
        return _block_reuse(requests, float(ttl_s), int(block_tokens))
    return _object_reuse(requests, float(ttl_s))


def request_rate_per_s(requests: pd.DataFrame) -> float:
    """Mean arrival rate: (n - 1) / (last start - first start)."""
    t = requests["t_start_s"].to_numpy(dtype=np.float64)
    span = float(t.max() - t.min()) if len(t) else 0.0
    if span <= 0.0:
        raise ValueError("all requests start at once: pass request_rate explicitly")
    return (len(t) - 1) / span


def hit_rate(requests: pd.DataFrame, capacity_tokens, ttl_s: float = np.inf) -> np.ndarray:
    """Token-weighted hit rate at each capacity (tokens)."""
    reuse = request_reuse(requests, ttl_s)
    return reuse.hit_tokens(capacity_tokens) / float(reuse.input_tokens.sum())


def infinite_hit_rate(requests: pd.DataFrame, ttl_s: float = np.inf) -> float:
    """Token-weighted hit rate with unlimited capacity (TTL still applies)."""
    return float(hit_rate(requests, np.inf, ttl_s))


def hit_curve(
    requests: pd.DataFrame,
    ttl_s: float = 300.0,
    request_rate: float | None = None,
    grid: np.ndarray = CACHE_GRID_TOKEN_S,
) -> tuple[np.ndarray, np.ndarray]:
    """(grid, hit fraction): the curve over ``cache_token_seconds = capacity / request rate``."""
    rate = request_rate_per_s(requests) if request_rate is None else float(request_rate)
    reuse = request_reuse(requests, ttl_s)
    grid = np.asarray(grid, dtype=np.float64)
    return grid, reuse.hit_tokens(grid * rate) / float(reuse.input_tokens.sum())
