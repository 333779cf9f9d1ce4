"""Latency percentiles (``dse.model.tails``): the spread formulas against brute-force
simulation of the same queue and engine, their order, and where nothing varies."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from dse.model.batched import evaluate_many
from dse.model.tails import (
    Spread,
    committed_tokens_variance,
    queue_variance,
    tpot_spread,
    ttft_spread,
)
from tests.support import calibration, designs, random_rows, tables

F = jnp.asarray


def _lognormal(rng, mean, cv, n):
    s2 = np.log1p(cv * cv)
    return rng.lognormal(np.log(mean) - s2 / 2, np.sqrt(s2), n)


def test_tpot_percentiles_match_a_simulated_aggregated_engine():
    """Each step decodes (30 ms) and admits a Poisson number of prompts (mean 0.6, 8 ms each);
    a request's TPOT is the mean of its lognormal number of steps."""
    rng = np.random.default_rng(0)
    t_d, c, mu = 0.030, 0.008, 0.6
    outputs = np.maximum(1, np.round(_lognormal(rng, 300.0, 0.8, 20_000))).astype(int)
    sim = np.array([np.mean(t_d + c * rng.poisson(mu, o)) for o in outputs])
    sp = tpot_spread(
        mean=F(t_d + mu * c), step_variance=F(mu * c * c), tau=F(1.0), alpha=F(0.0), k=F(0.0),
        output_tokens=F(outputs.mean()), output_cv=F(outputs.std() / outputs.mean()),
    )  # fmt: skip
    np.testing.assert_allclose([float(q) for q in sp.quantiles()],
                               np.percentile(sim, [50, 90, 99]), rtol=0.01)  # fmt: skip


def test_ttft_percentiles_match_a_simulated_admission():
    """50 ms of request path, a lognormal own prefill (mean 20 ms, cv 0.7), Poisson other
    prompts admitted beside it and a wait uniform over one iteration."""
    rng = np.random.default_rng(1)
    t_d, c, mu, n = 0.030, 0.008, 0.6, 200_000
    iteration = t_d + mu * c
    sim = (0.05 + _lognormal(rng, 0.02, 0.7, n) + c * rng.poisson(mu, n)
           + rng.uniform(0.0, iteration, n))  # fmt: skip
    sp = ttft_spread(
        fixed=F(0.05), mean=F(sim.mean()), own_prefill=F(0.02), new_tokens_cv=F(0.7),
        other_prompts=F(mu), prompt_cost=F(c), iteration=F(iteration), balance=F(0.0),
        queue=F(0.0), rho=F(0.0),
    )  # fmt: skip
    np.testing.assert_allclose([float(q) for q in sp.quantiles()],
                               np.percentile(sim, [50, 90, 99]), rtol=0.03)  # fmt: skip


@pytest.mark.parametrize("rho", [0.5, 0.8, 0.95])
def test_the_queue_variance_is_exact_for_an_mm1_queue(rho):
    """Lindley's recursion W' = max(W + S - A, 0) on an M/M/1 queue: the atom-plus-exponential
    wait has the simulated variance."""
    rng = np.random.default_rng(2)
    n = 400_000
    s, a = rng.exponential(1.0, n), rng.exponential(1.0 / rho, n)
    w = np.zeros(n)
    for i in range(1, n):
        w[i] = max(w[i - 1] + s[i - 1] - a[i], 0.0)
    w = w[n // 10 :]
    assert float(queue_variance(F(w.mean()), F(rho))) == pytest.approx(w.var(), rel=0.1)


@pytest.mark.parametrize("alpha, k", [(0.7, 3), (0.9, 5), (0.5, 1), (0.0, 4), (1.0, 4)])
def test_committed_tokens_variance_is_the_truncated_geometric_one(alpha, k):
    j = np.arange(1, k + 2)
    p = np.append(alpha ** (j[:-1] - 1) * (1 - alpha), alpha**k)  # P(T = j)
    expected = (p * j * j).sum() - (p * j).sum() ** 2
    got = float(committed_tokens_variance(F(alpha), F(float(k))))
    assert got == pytest.approx(expected, abs=1e-9)


def test_nothing_varies_means_every_percentile_is_the_mean():
    sp = Spread(F(0.1), F(0.2), F(0.0))
    assert [float(q) for q in sp.quantiles()] == pytest.approx([0.3, 0.3, 0.3], rel=1e-12)


@pytest.fixture(scope="module")
def evaluated():
    cal = calibration()
    archs, hws = tables()
    rows = random_rows(300, seed=7)
    for i, r in enumerate(rows):  # half with a dataset's spread
        if i % 2:
            r.update(isl_cv=0.5, osl_cv=1.25, length_corr=-0.3)
    mi = np.array([r["mi"] for r in rows], np.int32)
    hi = np.array([r["hi"] for r in rows], np.int32)
    m = evaluate_many(archs, hws, cal.efficiency, cal.runtime, mi, hi, designs(rows))
    return rows, m


def test_percentiles_are_ordered_and_finite(evaluated):
    _, m = evaluated
    for name in ("ttft_ms", "tpot_ms"):
        p50, p90, p99 = (np.asarray(getattr(m, f"{name}_p{q}")) for q in (50, 90, 99))
        assert np.all(np.isfinite(p50) & np.isfinite(p99))
        assert np.all(p50 <= p90 * (1 + 1e-12)) and np.all(p90 <= p99 * (1 + 1e-12))
        # Right-skewed: the median never exceeds the mean, the p99 never falls below it.
        mean = np.asarray(getattr(m, name))
        assert np.all(p50 <= mean * (1 + 1e-9)) and np.all(p99 >= mean * (1 - 1e-9))


def _explicit_rows(**change):
    """Llama-3.1-8B on H100s (tables index 0, 0), TP1, a few lengths and loads."""
    base = dict(mi=0, hi=0, tp=1.0, weight_bits=8.0, kv_bits=8.0, phase=2.0, framework=1.0,
                prefill_gpus=2.0, decode_gpus=2.0)  # fmt: skip
    loads = [dict(isl=isl, osl=osl, concurrency=c) for isl in (500.0, 4000.0)
             for osl in (100.0, 1000.0) for c in (1.0, 16.0, 64.0)]  # fmt: skip
    return [dict(base, **load, **change) for load in loads]


def _serve(rows):
    cal = calibration()
    archs, hws = tables()
    mi = np.array([r["mi"] for r in rows], np.int32)
    hi = np.array([r["hi"] for r in rows], np.int32)
    return evaluate_many(archs, hws, cal.efficiency, cal.runtime, mi, hi, designs(rows))


@pytest.mark.parametrize(
    "change",
    [dict(mode=1.0), dict(phase=1.0, batch=8.0), dict(mode=1.0, osl_cv=1.0)],
    ids=["disaggregated", "static-decode", "disaggregated-spread-lengths"],
)
def test_a_deterministic_step_has_its_mean_at_every_percentile(change):
    """Disaggregated decode without speculation and a phase-isolated static batch run the
    same step for every request: TPOT p50 = p90 = p99 = mean, whatever the lengths."""
    m = _serve(_explicit_rows(**change))
    assert np.all(np.asarray(m.feasible) > 0.5)
    for q in (50, 90, 99):
        np.testing.assert_allclose(np.asarray(getattr(m, f"tpot_ms_p{q}")),
                                   np.asarray(m.tpot_ms), rtol=1e-9)  # fmt: skip


def test_what_varies_spreads_the_percentiles():
    """Aggregated steps carry a varying number of prompts; speculation commits a varying number
    of tokens; a prompt-length spread widens TTFT: each raises the p99 above the mean."""
    agg = _serve(_explicit_rows(mode=0.0))
    spec = _serve(_explicit_rows(mode=1.0, spec_k=3.0, spec_tokens_per_step=0.0))
    wide = _serve(_explicit_rows(mode=1.0, isl_cv=1.0))
    plain = _serve(_explicit_rows(mode=1.0))
    busy = np.array([r["concurrency"] > 1 for r in _explicit_rows()])
    assert np.all(np.asarray(agg.tpot_ms_p99)[busy] > np.asarray(agg.tpot_ms)[busy])
    assert np.all(np.asarray(spec.tpot_ms_p99) > np.asarray(spec.tpot_ms))
    assert np.all(np.asarray(wide.ttft_ms_p99) > np.asarray(plain.ttft_ms_p99))
