"""What would have to be true (dse.search.whatif): the solver's tie value against a brute-force
bisection over every design, its "no value in range" answer, the winner moving with a shared
parameter, and Stack.with_inputs (a what-if never edits the stack it starts from)."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pandas as pd
import pytest

from dse.model.system_design import SYSTEM_FIELDS
from dse.search.objectives import Constraint, Objective, meets
from dse.search.whatif import default_parameters, what_would_change
from dse.stack import Stack

MODEL = "llama3.1-70b"
RANK = Objective("usd_per_mtok", maximize=False)
TARGET = (Constraint("tok_s_user", 40.0, None),)


@functools.lru_cache(maxsize=1)
def _stack() -> Stack:
    return Stack("chat", sessions=8)


@functools.lru_cache(maxsize=1)
def _points() -> pd.DataFrame:
    """A small two-system study: Llama-3.1-70B on HGX H200 and HGX B200, tp x batch x
    precision, every design evaluated (as a study's points table)."""
    stack = _stack()
    rows, systems = [], []
    for system in ("h200_hgx", "b200_hgx"):
        for bits in (8.0, 16.0):
            for tp in (4, 8):
                for batch in (4, 16, 64, 256):
                    rows.append(stack.design_values(MODEL, system, "default", tp=tp, batch=batch,
                                                    weight_bits=bits, decode_units=tp))  # fmt: skip
                    systems.append(system)
    cols = {f: np.array([r[f] for r in rows], np.float64) for f in SYSTEM_FIELDS}
    metrics = stack.evaluate_arrays(cols)
    table = pd.DataFrame(cols).assign(**{k: np.asarray(v) for k, v in metrics.items()})
    table["feasible"] = table["feasible"] > 0.5
    table.insert(0, "system", systems)
    table.insert(0, "point", np.arange(len(table)))
    return table


def _best(stack: Stack, table: pd.DataFrame, inputs) -> pd.Series:
    """Brute force: every design of ``table`` at ``inputs``, the best rank value per system."""
    cols = {f: table[f].to_numpy(np.float64) for f in SYSTEM_FIELDS}
    m = stack.with_inputs(inputs).evaluate_arrays(cols)
    ok = meets(m, TARGET)
    value = pd.Series(np.where(ok, m[RANK.metric], np.inf), index=table.index)
    return value.groupby(table["system"].to_numpy()).min()


def _setup():
    stack, points = _stack(), _points()
    best = _best(stack, points, stack.inputs)
    winner = best.idxmin()
    loser = best.drop(winner).idxmin()
    assert np.isfinite(best[loser]) and best[loser] > best[winner], best
    chip = int(points.loc[points["system"] == loser, "decode_hw"].iloc[0])
    params = {p.name: p for p in default_parameters(stack, [chip])}
    return stack, points, winner, loser, params


def test_the_tie_value_matches_a_brute_force_bisection():
    stack, points, winner, loser, params = _setup()
    (price,) = [p for name, p in params.items() if name.startswith("price_usd")]
    table = what_would_change(stack, points, MODEL, rank=RANK, target=TARGET, parameters=[price],
                              rel_tol=1e-3)  # fmt: skip
    row = table[(table["system"] == loser) & (table["parameter"] == price.name)].iloc[0]
    assert row["verdict"] == "ties at" and row["winner"] == winner

    def gap(v):
        best = _best(stack, points, price.apply(stack.inputs, v))
        return best[loser] - best[winner]

    lo, hi = price.low, price.nominal  # a lower price helps; the gap closes in between
    assert gap(lo) <= 0 < gap(hi)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if gap(mid) <= 0 else (lo, mid)
    assert row["tie_value"] == pytest.approx(lo, rel=2e-3)
    assert row["change_pct"] == pytest.approx(100 * (row["tie_value"] / price.nominal - 1))
    # At the reported value the loser ties or wins; just above it, it does not yet.
    assert gap(row["tie_value"]) <= 0 < gap(row["tie_value"] * 1.01)


def test_no_value_in_range_is_said_with_the_gap_left():
    stack, points, _, loser, params = _setup()
    (price,) = [p for name, p in params.items() if name.startswith("price_usd")]
    narrow = dataclasses.replace(price, low=0.999 * price.nominal)
    table = what_would_change(stack, points, MODEL, rank=RANK, target=TARGET, parameters=[narrow])
    row = table[table["parameter"] == narrow.name].iloc[0]
    assert row["system"] == loser and row["verdict"] == "no value in range"
    assert np.isnan(row["tie_value"])
    assert 0 < row["gap_at_limit_pct"] < row["gap_nominal_pct"]


def test_the_winner_is_not_listed_and_a_shared_parameter_moves_it_too():
    stack, points, winner, loser, _ = _setup()
    table = what_would_change(stack, points, MODEL, rank=RANK, target=TARGET)
    assert winner not in set(table["system"]) and loser in set(table["system"])
    assert table.attrs["model_calls"] > 0
    # Every row names a range holding its nominal value and a known verdict.
    named = table[~table["parameter"].isin(["", "all"])]
    assert (named["low"] <= named["nominal"]).all() and (named["nominal"] <= named["high"]).all()
    assert set(named["verdict"]) <= {"ties at", "no value in range",
                                     "nominal value is already the range's end"}  # fmt: skip
    # A parameter the winner's chip has (its own price) concerns only systems using that chip.
    w_chip = int(points.loc[points["system"] == winner, "decode_hw"].iloc[0])
    (w_price,) = [p for p in default_parameters(stack, [w_chip]) if p.name.startswith("price")]
    t = what_would_change(stack, points, MODEL, rank=RANK, target=TARGET, parameters=[w_price])
    assert (t["parameter"] == w_price.name).sum() == 0  # the loser does not use it


def test_with_inputs_shares_programs_and_leaves_the_stack_alone():
    stack, points, _, loser, params = _setup()
    (price,) = [p for name, p in params.items() if name.startswith("price_usd")]
    before = np.asarray(stack.tables.hardware.price_usd).copy()
    other = stack.with_inputs(price.apply(stack.inputs, 2 * price.nominal))
    assert other._sweep is stack._sweep  # no new program to load or compile
    np.testing.assert_array_equal(np.asarray(stack.tables.hardware.price_usd), before)
    mine = points[points["system"] == loser]
    cols = {f: mine[f].to_numpy(np.float64) for f in SYSTEM_FIELDS}
    a, b = stack.evaluate_arrays(cols), other.evaluate_arrays(cols)
    np.testing.assert_array_equal(a["tok_s_user"], b["tok_s_user"])  # price moves cost only
    assert (b["capex_usd"] > a["capex_usd"]).all()
