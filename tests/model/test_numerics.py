"""Gradient-safe arithmetic (dse.model.numerics) and the smooth roofline (dse.model.roofline)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dse.model.numerics import finite_or, ordered_sum, safe_div, safe_pow, soft_max, soft_min
from dse.model.roofline import Cost, gemm_efficiency, op_cost


def f64(x):
    return jnp.asarray(x, dtype=jnp.float64)


# ----- safe_div -------------------------------------------------------------------------------
def test_safe_div_values_and_fallback():
    assert float(safe_div(f64(6.0), f64(3.0))) == 2.0
    assert float(safe_div(f64(6.0), f64(0.0))) == 0.0
    assert float(safe_div(f64(6.0), f64(0.0), 7.0)) == 7.0
    assert float(safe_div(f64(6.0), f64(-2.0), 5.0)) == 5.0  # non-positive denominators fall back


def test_safe_div_gradient_finite_at_zero_denominator():
    g_num, g_den = jax.grad(lambda n, d: safe_div(n, d), argnums=(0, 1))(f64(3.0), f64(0.0))
    assert np.isfinite(float(g_num)) and np.isfinite(float(g_den))
    assert float(g_num) == 0.0 and float(g_den) == 0.0
    g_num, g_den = jax.grad(lambda n, d: safe_div(n, d), argnums=(0, 1))(f64(3.0), f64(2.0))
    assert float(g_num) == pytest.approx(0.5) and float(g_den) == pytest.approx(-0.75)


# ----- soft_max / soft_min --------------------------------------------------------------------
@pytest.mark.parametrize(
    "a,b", [(1.0, 2.0), (3.0, 3.0), (1e-12, 5e-12), (1e3, 1.0), (0.0, 4.0), (7e-7, 0.0)]
)
def test_soft_max_bounds(a, b):
    s = float(soft_max(f64(a), f64(b)))
    m = max(a, b)
    assert m <= s <= m * 2.0**0.25 * (1 + 1e-15)
    assert s == pytest.approx(float(soft_max(f64(b), f64(a))), rel=1e-15)  # symmetric
    if min(a, b) == 0.0:
        assert s == m  # exact when one term vanishes


def test_soft_max_tie_error_is_two_to_the_one_over_p():
    assert float(soft_max(f64(2.0), f64(2.0))) == pytest.approx(2.0 * 2.0**0.25, rel=1e-14)


def test_soft_max_integer_and_float_p_agree():
    a, b = f64(0.37), f64(0.81)
    assert float(soft_max(a, b, 4)) == pytest.approx(float(soft_max(a, b, 4.0)), rel=1e-14)
    assert float(soft_max(a, b, 4.0)) == pytest.approx((0.37**4 + 0.81**4) ** 0.25, rel=1e-14)


def test_soft_max_no_overflow_or_underflow():
    for scale in (1e-30, 1e-12, 1.0, 1e3, 1e30):
        s = float(soft_max(f64(scale), f64(0.5 * scale)))
        assert np.isfinite(s) and s > 0
        assert s == pytest.approx(scale * (1 + 0.5**4) ** 0.25, rel=1e-12)


def test_soft_max_zero_zero_has_zero_gradient():
    val, grads = jax.value_and_grad(lambda a, b: soft_max(a, b), argnums=(0, 1))(f64(0.0), f64(0.0))
    assert float(val) == 0.0
    assert all(np.isfinite(float(g)) for g in grads)


@pytest.mark.parametrize("a,b", [(1.0, 2.0), (3.0, 3.0), (1e-9, 1e3)])
def test_soft_min_bounds(a, b):
    s = float(soft_min(f64(a), f64(b)))
    m = min(a, b)
    assert m * 2.0 ** (-1 / 8) * (1 - 1e-15) <= s <= m


def test_soft_min_zero_is_zero_with_finite_gradient():
    val, grads = jax.value_and_grad(lambda a, b: soft_min(a, b), argnums=(0, 1))(f64(0.0), f64(3.0))
    assert float(val) == 0.0
    assert all(np.isfinite(float(g)) for g in grads)


# ----- safe_pow / finite_or -------------------------------------------------------------------
def test_safe_pow():
    assert float(safe_pow(f64(0.5), f64(3.0))) == pytest.approx(0.125, rel=1e-14)
    assert float(safe_pow(f64(0.0), f64(3.0))) == 0.0
    g = jax.grad(lambda b, e: safe_pow(b, e), argnums=(0, 1))(f64(0.0), f64(2.0))
    assert all(np.isfinite(float(x)) for x in g)
    g = jax.grad(lambda b, e: safe_pow(b, e), argnums=(0, 1))(f64(0.5), f64(0.0))
    assert all(np.isfinite(float(x)) for x in g)


def test_finite_or():
    x = jnp.array([1.0, jnp.nan, jnp.inf, -jnp.inf])
    assert np.array_equal(np.asarray(finite_or(x, 0.0)), [1.0, 0.0, 0.0, 0.0])


# ----- roofline -------------------------------------------------------------------------------
def test_gemm_efficiency_saturates_at_mfu():
    mfu, half = f64(0.7), f64(64.0)
    assert float(gemm_efficiency(f64(64.0), mfu, half)) == pytest.approx(0.35)
    assert float(gemm_efficiency(f64(1e9), mfu, half)) == pytest.approx(0.7, rel=1e-6)
    assert float(gemm_efficiency(f64(0.0), mfu, half)) == 0.0


def test_op_cost_compute_and_memory_limits():
    # compute-bound: 1e12 FLOPs at 1e12 FLOP/s, 1 byte at 1e12 B/s
    c = op_cost(f64(1e12), f64(1.0), f64(1e12), f64(1e12))
    assert float(c.total) == pytest.approx(1.0, rel=1e-12)
    assert float(c.compute) == pytest.approx(1.0, rel=1e-12) and float(c.memory) < 1e-12
    # memory-bound
    c = op_cost(f64(1.0), f64(2e12), f64(1e12), f64(1e12))
    assert float(c.total) == pytest.approx(2.0, rel=1e-12) and float(c.memory) == pytest.approx(
        2.0, rel=1e-12
    )
    # a tie costs more than either alone; shares always sum to the total
    c = op_cost(f64(1e12), f64(1e12), f64(1e12), f64(1e12))
    assert float(c.total) > 1.0
    assert float(c.compute + c.memory + c.network + c.overhead) == pytest.approx(
        float(c.total), rel=1e-14
    )


def test_op_cost_zero_work_is_zero_with_finite_gradient():
    c = op_cost(f64(0.0), f64(0.0), f64(1e12), f64(1e12))
    assert float(c.total) == 0.0 and float(c.compute) == 0.0 and float(c.memory) == 0.0
    g = jax.grad(lambda f, b: op_cost(f, b, f64(1e12), f64(1e12)).total, argnums=(0, 1))(
        f64(0.0), f64(0.0)
    )
    assert all(np.isfinite(float(x)) for x in g)


def test_cost_add_and_scale():
    a = Cost(f64(1.0), f64(0.5), f64(0.25), f64(0.25), f64(0.0))
    b = (a + a).scale(f64(3.0))
    assert [float(x) for x in (b.total, b.compute, b.memory, b.network, b.overhead)] == [
        6.0,
        3.0,
        1.5,
        1.5,
        0.0,
    ]


# ----- expected maximum of Poisson counts (busiest DP rank) ----------------------------------
@pytest.mark.parametrize("mean", [0.01, 0.5, 2.0, 3.9, 4.1, 8.0, 30.0])
@pytest.mark.parametrize("n", [1.0, 2.0, 8.0, 32.0])
def test_expected_max_poisson_matches_monte_carlo(mean, n):
    from dse.model.numerics import expected_max_poisson

    rng = np.random.default_rng(0)
    mc = rng.poisson(mean, (40_000, int(n))).max(axis=1).mean()
    est = float(expected_max_poisson(jnp.asarray(mean), jnp.asarray(n)))
    assert est == pytest.approx(mc, rel=0.03, abs=0.01)
    if n == 1.0:
        assert est == mean


def test_expected_max_poisson_gradient_finite_at_zero_and_positive():
    from dse.model.numerics import expected_max_poisson

    g = jax.grad(lambda m: expected_max_poisson(m, jnp.asarray(8.0)))
    for m in (0.0, 0.3, 3.0, 12.0):
        v = float(g(jnp.asarray(m)))
        assert np.isfinite(v) and v > 0


def test_ordered_sum_is_the_sum_and_does_not_depend_on_the_batch():
    rng = np.random.default_rng(3)
    x = rng.lognormal(0.0, 3.0, size=(64, 192, 16))  # wide range: rounding order shows
    np.testing.assert_allclose(ordered_sum(jnp.asarray(x[0]), axis=0), x[0].sum(0), rtol=1e-13)
    assert float(ordered_sum(jnp.asarray([2.5]))) == 2.5  # one element; odd lengths zero-padded
    np.testing.assert_allclose(ordered_sum(jnp.asarray(x[0, :5, 0])), x[0, :5, 0].sum(), rtol=1e-15)
    f = jax.jit(jax.vmap(lambda a: ordered_sum(a, axis=0)))
    whole = np.asarray(f(jnp.asarray(x)))
    for size in (1, 7, 32):  # the same designs in other batch shapes: bit for bit
        np.testing.assert_array_equal(np.asarray(f(jnp.asarray(x[:size]))), whole[:size])
