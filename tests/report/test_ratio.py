"""The cost-advantage curve (dse.report.figures.ratio): the cheapest cost reaching each target
against brute force, the advantage over the cheapest reference, and the end of the reference's
frontier said as such rather than divided by."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from dse.report.figures.ratio import cheapest_from, cost_ratio_table
from dse.search.objectives import Objective


def test_cheapest_from_matches_brute_force():
    rng = np.random.default_rng(0)
    x, cost = rng.uniform(10, 500, 300), rng.uniform(0.5, 20, 300)
    targets = np.concatenate([rng.uniform(0, 600, 50), x[:5]])  # also exactly at designs
    got = cheapest_from(x, cost, targets)
    want = [cost[x >= t].min() if (x >= t).any() else np.inf for t in targets]
    np.testing.assert_array_equal(got, want)


def _review(rows):
    frame = pd.DataFrame(rows, columns=["system", "tok_s_user", "usd_per_mtok"])
    return SimpleNamespace(candidates=frame, objectives=(Objective("tok_s_user", True),))


def test_advantage_is_the_cheapest_reference_over_the_system():
    review = _review([
        ("gb200", 50, 2.0), ("gb200", 100, 4.0),  # GB200's frontier ends at 100 tok/s/user
        ("gb300", 50, 3.0), ("gb300", 150, 9.0),  # GB300 reaches 150
        ("vr200", 50, 1.0), ("vr200", 200, 3.0),
    ])  # fmt: skip
    t = cost_ratio_table(review, ["gb200", "gb300"]).set_index(["system", "tok_s_user"])
    targets = t.xs("vr200").index.to_numpy()
    assert targets.min() == pytest.approx(50) and targets.max() == pytest.approx(200)
    for x in targets:
        row = t.loc[("vr200", x)]
        mine = 1.0 if x <= 50 else 3.0
        assert row["usd_per_mtok"] == pytest.approx(mine)
        if x <= 150:  # cheapest Blackwell reaching x: GB200 up to 100, then only GB300
            ref, name = (
                (2.0, "gb200") if x <= 50 else (4.0, "gb200") if x <= 100 else (9.0, "gb300")
            )
            assert row["reference_reaches"] and row["reference_system"] == name
            assert row["advantage"] == pytest.approx(ref / mine)
        else:  # past 150 tok/s/user no Blackwell design reaches the target
            assert not row["reference_reaches"] and np.isnan(row["advantage"])


def test_no_reference_system_in_the_study_gives_no_table():
    review = _review([("vr200", 50, 1.0)])
    assert cost_ratio_table(review, ["gb200"]).empty
