"""LRU stack distances in tokens, for a whole access stream at once (numpy, O(n log^2 n)).

LRU is a stack algorithm (Mattson et al., 1970): a cache of capacity C holds exactly the C
most-recently-used tokens, for every C at once. So one pass that finds, for each access, how many
tokens of *other* keys were used since this key's previous use (its stack depth ``D``) gives the
hit/miss outcome at every capacity: the key's content is still cached iff ``D + size <= C``
(or, for an object evicted tail-first, its first ``C - D`` tokens are).

With accesses numbered 0..n-1, key sizes ``w`` (the key's size at that access) and ``next[i]`` the
index of the next access to the same key (n if none), the live entries at a query position ``q``
are the accesses ``i < q <= next[i]``, so for an access whose key was last used at ``prev``

    D = sum(w[i] for prev < i < q) - sum(w[i] for i > prev with next[i] < q).

The first sum is a prefix-sum difference; the second is a weighted 2-D dominance count, done here
with one sort and two ``searchsorted`` per bit of the index (``i > X`` holds iff, at the highest
bit where ``i`` and ``X`` differ, ``i`` has a 1), so nothing loops over accesses in Python.
"""

from __future__ import annotations

import numpy as np


def previous_and_next(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the previous (-1 if none) and next (n if none) access to the same key."""
    n = len(keys)
    order = np.lexsort((np.arange(n), keys))
    same = keys[order[1:]] == keys[order[:-1]]
    prev = np.full(n, -1, dtype=np.int64)
    nxt = np.full(n, n, dtype=np.int64)
    prev[order[1:][same]] = order[:-1][same]
    nxt[order[:-1][same]] = order[1:][same]
    return prev, nxt


def _dominance_sum(y: np.ndarray, w: np.ndarray, x_lo: np.ndarray, y_hi: np.ndarray) -> np.ndarray:
    """For each query j: sum of w[i] over points i (their index) with i > x_lo[j], y[i] < y_hi[j].

    ``x_lo`` must be >= 0 and < len(y); ``y`` and ``y_hi`` must lie in [0, len(y)].
    """
    n = len(y)
    out = np.zeros(len(x_lo), dtype=np.int64)
    if n == 0 or len(x_lo) == 0:
        return out
    index = np.arange(n, dtype=np.int64)
    stride = np.int64(n + 2)  # > any y value: (group, y) packs into one sortable int64
    for level in range(max(1, int(n - 1).bit_length())):
        bit = np.int64(1) << level
        pts = index[(index & bit) != 0]
        qs = np.flatnonzero((x_lo & bit) == 0)
        if len(pts) == 0 or len(qs) == 0:
            continue
        keys = (pts >> (level + 1)) * stride + y[pts]
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        cum = np.concatenate([[0], np.cumsum(w[pts][order])])
        base = (x_lo[qs] >> (level + 1)) * stride
        hi = np.searchsorted(keys, base + y_hi[qs], side="left")
        lo = np.searchsorted(keys, base, side="left")
        out[qs] += cum[hi] - cum[lo]
    return out


def stack_depths(keys: np.ndarray, sizes: np.ndarray, query: np.ndarray | None = None):
    """LRU stack depth (tokens of other keys used more recently) of each access's key.

    ``keys``: key of each access, in access order; ``sizes``: the key's size (tokens) after the
    access; ``query``: position at which the cache is looked up for this access (default: the
    access itself; for several keys touched by one request, the request's first access, so that
    a request's own blocks never push each other down). Returns ``(depth, prev)``: depth is -1
    where the key was never used before (``prev == -1``).
    """
    keys = np.asarray(keys)
    w = np.asarray(sizes, dtype=np.int64)
    n = len(keys)
    q = np.arange(n, dtype=np.int64) if query is None else np.asarray(query, dtype=np.int64)
    prev, nxt = previous_and_next(keys)
    if np.any(prev >= q):
        raise ValueError("a key repeats within one lookup (dedupe keys within a request)")
    seen = np.flatnonzero(prev >= 0)
    cum = np.concatenate([[0], np.cumsum(w)])
    depth = np.full(n, -1, dtype=np.int64)
    between = cum[q[seen]] - cum[prev[seen] + 1]
    reused_inside = _dominance_sum(nxt, w, prev[seen], q[seen])
    depth[seen] = between - reused_inside
    return depth, prev
