"""Pareto filtering and hypervolume: against brute force, streaming equals all-at-once."""

import numpy as np
import pytest

from dse.search import Front, hypervolume, pareto_mask


def _brute_force(values, maximize):
    v = np.where(np.asarray(maximize), -values, values)  # minimize everything
    n = len(v)
    keep = np.ones(n, dtype=bool)
    for i in range(n):
        dominated = np.all(v <= v[i], axis=1) & np.any(v < v[i], axis=1)
        keep[i] = not dominated.any()
    return keep


@pytest.mark.parametrize("maximize", [(True, True), (True, False, True), (False, False)])
def test_pareto_mask_equals_brute_force(maximize):
    rng = np.random.default_rng(len(maximize))
    values = np.round(rng.random((600, len(maximize))), 2)  # rounding creates ties
    assert (pareto_mask(values, maximize) == _brute_force(values, maximize)).all()


def test_twins_an_ulp_apart_are_ties_but_a_real_difference_dominates():
    # Four designs with the same metrics, computed by programs that round differently (another
    # XLA fusion, CPU or GPU): an ulp must not decide which of them is on the front.
    tok, usd = 191.08749513, 3.2361160
    twins = np.array([[tok, usd], [tok, np.nextafter(usd, 9.0)], [np.nextafter(tok, 0.0), usd],
                      [tok, np.nextafter(np.nextafter(usd, 0.0), 0.0)]])  # fmt: skip
    assert pareto_mask(twins, (True, False)).all()
    better = np.vstack([twins, [tok * (1 + 1e-9), usd]])  # 1e-9 better: a real difference
    assert pareto_mask(better, (True, False)).tolist() == [False] * 4 + [True]


def test_streaming_front_equals_front_of_all_points():
    rng = np.random.default_rng(1)
    values = rng.random((5000, 2))
    ids = np.arange(5000)
    front = Front.empty((True, True))
    for start in range(0, 5000, 700):
        front = front.merge(values[start : start + 700], ids[start : start + 700])
    direct = np.nonzero(pareto_mask(values, (True, True)))[0]
    assert (front.ids == direct).all()
    assert np.allclose(front.values, values[direct])


def test_hypervolume_of_a_known_front():
    # maximize both: points (2, 1) and (1, 2) with reference (0, 0) dominate 2 + 2 - 1 = 3
    pts = np.array([[2.0, 1.0], [1.0, 2.0], [0.5, 0.5]])
    assert hypervolume(pts, (0.0, 0.0), (True, True)) == pytest.approx(3.0)
    assert hypervolume(pts, (5.0, 5.0), (True, True)) == 0.0


def test_bad_objectives_are_one_clear_error():
    with pytest.raises(ValueError, match="NaN or inf"):
        pareto_mask(np.array([[1.0, np.nan]]), (True, True))
    with pytest.raises(ValueError, match="flags"):
        pareto_mask(np.ones((3, 2)), (True,))
