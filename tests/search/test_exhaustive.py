"""Exhaustive search over a small space: its front equals brute force over every point."""

import numpy as np
import pytest

from dse.search import pareto_mask
from dse.search.exhaustive import Objective, exhaustive_search
from dse.search.space import Space
from dse.stack import Stack


def test_space_enumerates_the_product_in_mixed_radix():
    space = Space.from_mapping({"system": [1, 2], "b": ["x", "y", "z"]})
    assert space.size == 6
    assert [space.point(i) for i in (0, 1, 3, 5)] == [
        {"system": 1, "b": "x"}, {"system": 1, "b": "y"}, {"system": 2, "b": "x"},
        {"system": 2, "b": "z"},
    ]  # fmt: skip


def test_a_system_may_list_subspaces_of_tied_fields():
    # An LPX pool's tp and chip count go together: a list gives one product per entry, not
    # their cross product (whose mismatched pairs would all be infeasible).
    space = Space.from_mapping(
        {
            "choices": {"batch": [1, 4]},
            "systems": {
                "gpu": {},
                "lpx": [{"tp": [48], "decode_units": [2928]}, {"tp": [64, 96], "kvp": [8]}],
            },
        }
    )
    assert [p.size for p in space.products] == [2, 2, 4]
    assert [p.name for p in space.products] == ["gpu", "lpx", "lpx"]
    assert space.point(2) == {"system": "lpx", "batch": 1, "tp": 48, "decode_units": 2928}
    assert space.point(7) == {"system": "lpx", "batch": 4, "tp": 96, "kvp": 8}
    with pytest.raises(ValueError, match=r"space\.systems\.lpx\[1\]\.tp=2\.5 must be a whole"):
        Space.from_mapping({"systems": {"lpx": [{}, {"tp": [2.5]}]}})
    with pytest.raises(ValueError, match=r"space\.systems\.lpx: an empty list"):
        Space.from_mapping({"systems": {"lpx": []}})


def test_exhaustive_front_equals_brute_force():
    stack = Stack(workload="agentic_coding", sessions=32)
    space = Space.from_mapping(
        {
            "system": ["vr200_nvl72", "gb200_nvl72"],
            "software": ["default", "nvfp4_mtp"],
            "batch": [1, 4, 16, 64],
            "prefill_units": [8, 16, 32],
        }
    )
    objectives = (Objective("tok_s_user", True), Objective("tok_s_per_unit", True))
    result = exhaustive_search(stack, "llama3.1-70b", space, objectives, chunk=20)
    # brute force: evaluate every point by name through the public API
    rows = [dict(model="llama3.1-70b", **space.point(i)) for i in range(space.size)]
    df = stack.evaluate(rows)
    feas = df["feasible"].to_numpy()
    values = df[["tok_s_user", "tok_s_per_unit"]].to_numpy()
    ids = []  # the result keeps each system's own front
    for system in df["system"].unique():
        mine = feas & (df["system"] == system).to_numpy()
        ids += list(np.nonzero(mine)[0][pareto_mask(values[mine], (True, True))])
    assert result.evaluated == space.size and result.feasible == int(feas.sum())
    assert (np.sort(result.front.ids) == np.sort(ids)).all()
    # and the table flags the global frontier
    glob = np.nonzero(feas)[0][pareto_mask(values[feas], (True, True))]
    flagged = result.front_table.loc[result.front_table["on_frontier"], "point"]
    assert sorted(flagged) == sorted(glob)


@pytest.mark.parametrize(
    "mapping, match",
    [
        ({"system": ["x"], "tp": [1, 2.5]}, r"space\.choices\.tp=2\.5 must be a whole number; tp counts"),
        ({"system": ["x"], "ep": [0, 8]}, r"space\.choices\.ep=0 is below 1; use a value >= 1"),
        ({"system": ["x"], "prefill_units": [-8]}, r"prefill_units=-8 is below 0"),
        # Issue 19 item 12: a fractional batch ran (1,920 "feasible" designs at batch 2.5).
        ({"system": ["x"], "batch": [2.5]}, r"space\.choices\.batch=2\.5 must be a whole number"),
        ({"system": ["x"], "decode_units": [float("inf")]}, r"decode_units=inf is not finite"),
        ({"systems": {"x": {"pp": ["2"]}}}, r"space\.systems\.x\.pp='2' is not a number"),
        ({"choices": {"system": ["x"]}, "continuous": {"tp": [1, 8]}}, r"cannot be continuous"),
    ],
)
def test_space_rejects_counts_that_can_never_be_valid(mapping, match):
    # Model-independent: whole numbers >= 1 (>= 0 for optional pools). Model-dependent layout
    # rules (tp vs heads) are per-point reasons, so tp: [1, 2, 4, 8, 16] stays a valid space.
    with pytest.raises(ValueError, match=match):
        Space.from_mapping(mapping)
    assert Space.from_mapping({"system": ["x"], "tp": [1, 2, 4, 8, 16], "prefill_units": [0, 8]})
