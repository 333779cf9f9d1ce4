"""Pareto fronts of evaluated designs, streamed chunk by chunk, and their hypervolume.

Non-dominated filtering and hypervolume come from moocore (ecosystem.md §2.3: 200K x 3 points
in ~0.03 s), not hand-rolled loops. moocore minimizes; objectives to maximize are negated
here, so callers pass natural values plus a ``maximize`` flag per column.

A sweep keeps a :class:`Front` (points + the row ids they came from) and merges each evaluated
chunk into it: ``front = front.merge(values, ids)`` returns a new front and never mutates, so
the union of chunk fronts filtered once more equals the front of all points at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import moocore
import numpy as np


def _as_minimization(values: np.ndarray, maximize) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(
            f"objectives must be a 2-D array (points x objectives), got {values.shape}"
        )
    sign = np.where(np.asarray(maximize, dtype=bool), -1.0, 1.0)
    if sign.shape != (values.shape[1],):
        raise ValueError(f"maximize has {sign.size} flags for {values.shape[1]} objectives")
    return values * sign


# Objectives that agree to TIE_BITS significant bits (relative 2^-40 ~ 1e-12) are ties. Float
# reassociation (another XLA fusion, CPU ISA or GPU) moves a metric by an ulp or two (~1e-16);
# without this, twin designs with equal metrics (settings that do not matter at that point)
# would fall off the front at random, one dominating the other by an ulp. No model metric is
# meaningful to 1e-12.
TIE_BITS = 40


def _ties_merged(values: np.ndarray) -> np.ndarray:
    """``values`` rounded to ``TIE_BITS`` significant bits (exact for values already there)."""
    mantissa, exponent = np.frexp(values)
    return np.ldexp(np.round(mantissa * 2.0**TIE_BITS) / 2.0**TIE_BITS, exponent)


def pareto_mask(values: np.ndarray, maximize) -> np.ndarray:
    """Boolean mask of the non-dominated rows (points equal to a front point to ``TIE_BITS``
    significant bits are all kept)."""
    minimized = _as_minimization(values, maximize)
    if len(minimized) == 0:
        return np.zeros(0, dtype=bool)
    if not np.isfinite(minimized).all():
        raise ValueError("objectives contain NaN or inf; mask infeasible designs out first")
    return np.asarray(
        moocore.is_nondominated(_ties_merged(minimized), keep_weakly=True), dtype=bool
    )


def hypervolume(values: np.ndarray, reference, maximize) -> float:
    """Volume dominated by ``values`` and bounded by ``reference`` (in natural units: for a
    maximized objective the reference is a lower bound, for a minimized one an upper bound)."""
    minimized = _as_minimization(values, maximize)
    ref = np.asarray(reference, dtype=np.float64) * np.where(np.asarray(maximize), -1.0, 1.0)
    inside = (minimized < ref).all(axis=1)
    if not inside.any():
        return 0.0
    return float(moocore.hypervolume(minimized[inside], ref=ref))


@dataclass(frozen=True)
class Front:
    """The non-dominated points seen so far and the ids of the designs they belong to."""

    maximize: tuple[bool, ...]
    values: np.ndarray  # [k, m]
    ids: np.ndarray  # [k]

    @classmethod
    def empty(cls, maximize) -> Front:
        m = len(maximize)
        return cls(tuple(bool(x) for x in maximize), np.zeros((0, m)), np.zeros(0, np.int64))

    def merge(self, values: np.ndarray, ids: np.ndarray) -> Front:
        """A new front of the old one plus ``values`` (rows) with ``ids``."""
        values = np.asarray(values, dtype=np.float64).reshape(-1, len(self.maximize))
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(values) != len(ids):
            raise ValueError(f"{len(values)} points but {len(ids)} ids")
        chunk = pareto_mask(values, self.maximize) if len(values) else np.zeros(0, bool)
        both = np.concatenate([self.values, values[chunk]])
        both_ids = np.concatenate([self.ids, ids[chunk]])
        keep = pareto_mask(both, self.maximize) if len(both) else np.zeros(0, bool)
        order = np.argsort(both_ids[keep], kind="stable")
        return Front(self.maximize, both[keep][order], both_ids[keep][order])
