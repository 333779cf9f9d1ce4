"""The length moments of a workload: the output-weighted decode context and the p99 context
(``dse.model.workload``), checked against per-request sums on sampled lengths and against the
shipped MLPerf datasets."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dse.catalog import load_catalog
from dse.model.workload import context_p99, mean_decode_context


def _moments(i, o):
    return (i.mean(), o.mean(), i.std() / i.mean(), o.std() / o.mean(), np.corrcoef(i, o)[0, 1])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_decode_context_is_the_output_weighted_mean_of_the_sampled_requests(seed):
    """Any length distribution (here correlated lognormals and a two-point mix): the closed
    form equals sum(O * (I + O/2)) / sum(O) over the requests, to float precision."""
    rng = np.random.default_rng(seed)
    z = rng.multivariate_normal([0, 0], [[1, -0.4], [-0.4, 1]], size=20_000)
    i = np.exp(6.5 + 0.5 * z[:, 0]).round()
    o = np.where(rng.random(20_000) < 0.3, 8000.0, np.exp(6.0 + 1.1 * z[:, 1]).round())
    direct = (o * (i + o / 2)).sum() / o.sum()
    assert float(mean_decode_context(*_moments(i, o))) == pytest.approx(direct, rel=1e-9)


def test_fixed_lengths_give_the_plain_formulas_and_finite_gradients():
    z = jnp.zeros(())
    assert float(mean_decode_context(1000.0, 200.0, z, z, z)) == 1100.0
    assert float(context_p99(1000.0, 200.0, z, z, z)) == pytest.approx(1200.0, rel=1e-12)
    # The p99's square root is guarded where the spread is 0 (double where).
    grads = jax.grad(lambda x: context_p99(x[0], x[1], x[2], x[3], x[4]))(
        jnp.array([1000.0, 200.0, 0.0, 0.0, 0.0])
    )
    assert bool(jnp.all(jnp.isfinite(grads)))
    assert float(grads[0]) == pytest.approx(1.0) and float(grads[1]) == pytest.approx(1.0)


def test_more_spread_means_a_longer_context_and_a_longer_tail():
    ctx = [float(mean_decode_context(800.0, 4000.0, 0.5, cv, 0.0)) for cv in (0.0, 0.5, 1.25)]
    p99 = [float(context_p99(800.0, 4000.0, 0.5, cv, 0.0)) for cv in (0.0, 0.5, 1.25)]
    assert ctx == sorted(ctx) and len(set(ctx)) == 3
    assert p99 == sorted(p99) and len(set(p99)) == 3


@pytest.mark.parametrize("name", sorted(load_catalog().datasets))
def test_each_shipped_dataset_p99_is_near_the_lognormal_estimate(name):
    """The lognormal p99 the feasibility check uses stays within 30 % of each MLPerf set's own
    p99 (DeepSeek-R1's outputs are truncated at 32K tokens, the worst case at -27 %)."""
    d = load_catalog().dataset(name)
    est = float(context_p99(d.isl, d.osl, d.isl_cv, d.osl_cv, d.length_corr))
    assert est == pytest.approx(d.context_p99, rel=0.30)
    assert est >= d.isl + d.osl  # a spread never shortens the tail below the mean
