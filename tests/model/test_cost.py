"""Cost and power model: hand-computed $/GPU-hour, monotonicity, safe zeros, gradients, loader."""

import jax
import jax.numpy as jnp
import pytest
import yaml

from dse.catalog import load_cost_params
from dse.model.cost import (
    COST_FIELDS,
    accelerator_pool_cost,
    capital_recovery_per_year,
    memory_tier_cost,
    per_million_tokens,
    split_cost_by_phase,
    tokens_per_mw,
    usd_per_gpu_hour,
)


def f64(x):
    return jnp.asarray(x, dtype=jnp.float64)


@pytest.fixture(scope="module")
def params():
    return load_cost_params()


@pytest.fixture(scope="module")
def h100(catalog):
    return catalog.accelerator("h100_sxm").hw


def test_h100_gpu_hour_matches_hand_computation(catalog, params, h100):
    raw = yaml.safe_load((catalog.root / "cost" / "default.yaml").read_text())
    price, tdp = 30_000.0, 700.0  # conf/hardware/h100_sxm.yaml
    assert float(h100.price_usd) == price and float(h100.tdp_w) == tdp
    hours = raw["amortization_years"] * 8760.0
    capex = (price + raw["network_usd_per_accelerator"]) / hours
    rated_w = tdp * raw["it_power_per_tdp"] + raw["network_w_per_accelerator"]
    busy_w = tdp * raw["it_power_per_tdp"] * raw["power_utilization"]
    wall_kw = (busy_w + raw["network_w_per_accelerator"]) * raw["pue"] / 1e3
    power = wall_kw * raw["electricity_usd_per_kwh"]
    facility = rated_w / 1e3 * raw["facility_usd_per_kw_month"] * 12.0 / 8760.0
    expected = capex + power + facility
    assert float(usd_per_gpu_hour(h100, params)) == pytest.approx(expected, rel=1e-12)
    assert 0.8 < expected < 2.5  # an owner's H100-hour, below 2025-26 rental ($1.70-2.35)
    pool = accelerator_pool_cost(h100, f64(8.0), f64(1.0), params)
    assert float(pool.total_usd_h) == pytest.approx(8 * expected, rel=1e-12)
    assert float(pool.power_w) == pytest.approx(8 * wall_kw * 1e3, rel=1e-12)


def test_idle_pool_still_pays_capex_and_an_idle_floor(params, h100):
    idle = accelerator_pool_cost(h100, f64(1.0), f64(0.0), params)
    busy = accelerator_pool_cost(h100, f64(1.0), f64(1.0), params)
    assert float(idle.capex_usd_h) == float(busy.capex_usd_h)
    assert 0 < float(idle.power_w) < float(busy.power_w)


def test_cost_never_falls_when_anything_grows(params, h100):
    base = float(accelerator_pool_cost(h100, f64(4.0), f64(0.5), params).total_usd_h)
    assert float(accelerator_pool_cost(h100, f64(5.0), f64(0.5), params).total_usd_h) > base
    assert float(accelerator_pool_cost(h100, f64(4.0), f64(0.9), params).total_usd_h) > base
    pricier = h100.__class__(**{**vars(h100), "price_usd": h100.price_usd * 2})
    assert float(accelerator_pool_cost(pricier, f64(4.0), f64(0.5), params).total_usd_h) > base
    for field in ("electricity_usd_per_kwh", "pue", "facility_usd_per_kw_month"):
        more = load_cost_params(overrides={field: float(getattr(params, field)) * 1.5})
        assert float(accelerator_pool_cost(h100, f64(4.0), f64(0.5), more).total_usd_h) > base
    longer = load_cost_params(overrides={"amortization_years": 6})
    assert float(accelerator_pool_cost(h100, f64(4.0), f64(0.5), longer).total_usd_h) < base


def test_cost_of_capital_uses_the_annuity(params):
    financed = load_cost_params(overrides={"cost_of_capital": 0.10})
    assert float(capital_recovery_per_year(params)) == pytest.approx(1 / 5)
    assert float(capital_recovery_per_year(financed)) == pytest.approx(0.1 / (1 - 1.1**-5))


def test_memory_tier_prices_capacity_or_bandwidth_whichever_binds(params):
    zero = memory_tier_cost(f64(0.0), f64(0.0), params)
    assert float(zero.total_usd_h) == 0.0 and float(zero.power_w) == 0.0
    tier = memory_tier_cost(f64(1000.0), f64(100.0), params)
    hours = 5 * 8760.0
    assert float(tier.capex_usd_h) == pytest.approx((1000 * 10 + 100 * 500) / hours)
    fast = memory_tier_cost(f64(0.0), f64(100.0), params, storage_gbs=f64(900.0))
    assert float(fast.capex_usd_h) == pytest.approx(1000 * 500 / hours)  # 900 GB/s needs 1000 TB


def test_zero_tokens_give_finite_costs_and_finite_gradients():
    usd_h = f64(10.0)
    assert float(per_million_tokens(usd_h, f64(0.0))) == 0.0
    assert float(per_million_tokens(usd_h, f64(0.0), fallback=1e9)) == 1e9
    assert float(per_million_tokens(usd_h, f64(1e6 / 3600))) == pytest.approx(10.0)
    assert float(tokens_per_mw(f64(100.0), f64(0.0))) == 0.0
    for tok_s in (0.0, 1e-6, 1.0, 1e5):
        g = jax.grad(per_million_tokens, argnums=1)(usd_h, f64(tok_s))
        assert jnp.isfinite(g)
    g = float(jax.grad(per_million_tokens, argnums=1)(usd_h, f64(100.0)))
    assert g == pytest.approx(-10.0 * 1e6 / 3600 / 100.0**2)  # d/dx (c/x) = -c/x^2


def test_pool_cost_is_vmappable_and_differentiable(params, h100):
    units = jnp.linspace(1.0, 64.0, 8, dtype=jnp.float64)
    totals = jax.vmap(lambda u: accelerator_pool_cost(h100, u, f64(0.7), params).total_usd_h)(units)
    assert (jnp.diff(totals) > 0).all()
    grad = jax.grad(lambda u: accelerator_pool_cost(h100, f64(8.0), u, params).total_usd_h)
    assert float(grad(f64(0.5))) > 0  # more load, more power


def test_split_cost_by_phase_apportions_each_pool_to_its_work():
    phase = split_cost_by_phase(
        f64(36.0), f64(72.0), f64(3.6), f64(10_000.0), f64(100_000.0), f64(20_000.0)
    )
    assert float(phase.uncached_input_usd_per_mtok) == pytest.approx(1.0)
    assert float(phase.output_usd_per_mtok) == pytest.approx(1.0)
    assert float(phase.cached_input_usd_per_mtok) == pytest.approx(0.01)
    assert float(phase.cached_to_uncached) == pytest.approx(0.01)
    empty = split_cost_by_phase(*(f64(0.0),) * 6)
    assert all(float(getattr(empty, f)) == 0.0 for f in empty.__dataclass_fields__)


def test_every_default_field_has_a_source(catalog):
    raw = yaml.safe_load((catalog.root / "cost" / "default.yaml").read_text())
    assert set(COST_FIELDS) <= set(raw["sources"])
    assert all(len(raw["sources"][f]) > 40 for f in COST_FIELDS)


def test_loader_rejects_unknown_fields_with_did_you_mean():
    with pytest.raises(
        ValueError,
        match=r"unknown field 'electricity_usd_per_kw'.*did you mean "
        r"'electricity_usd_per_kwh'",
    ) as e:
        load_cost_params(overrides={"electricity_usd_per_kw": 0.1})
    assert "default.yaml" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf"), "cheap"])
def test_loader_rejects_bad_values_naming_field_and_file(value):
    with pytest.raises(ValueError, match=r"default\.yaml: pue=") as e:
        load_cost_params(overrides={"pue": value})
    assert "\n" not in str(e.value)


def test_loader_rejects_missing_fields_unknown_configs_and_pue_below_one(tmp_path):
    (tmp_path / "cost").mkdir()
    (tmp_path / "cost" / "thin.yaml").write_text("pue: 1.1\n")
    with pytest.raises(ValueError, match="missing field.*amortization_years"):
        load_cost_params("thin", conf_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown cost config 'defualt'.*did you mean 'default'"):
        load_cost_params("defualt")
    with pytest.raises(ValueError, match="pue=0.9 must be >= 1"):
        load_cost_params(overrides={"pue": 0.9})
    with pytest.raises(ValueError, match="idle_power_fraction <= power_utilization"):
        load_cost_params(overrides={"idle_power_fraction": 0.9})
