"""Cost and power of a system: capex amortization, electricity, networking, storage.

Per accelerator pool, $/h = ``units * price / (years * 8760)`` (straight-line depreciation of
the all-in price in ``conf/hardware``, which includes the rack share and host CPUs) + the
scale-out networking share + electricity ``units * W * pue * $/kWh``, where the draw ``W``
interpolates between an idle floor and TDP with utilization. Context storage is priced per TB.
Every default lives in ``conf/cost/default.yaml`` with its source.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jax import Array

from ..catalog.hardware import Hardware
from .numerics import safe_div

HOURS_PER_YEAR = 8760.0


class CostParams(eqx.Module):
    amortization_years: Array
    electricity_usd_per_kwh: Array
    pue: Array
    idle_power_fraction: Array  # draw at zero load as a fraction of TDP
    network_usd_per_accelerator: Array
    network_w_per_accelerator: Array
    storage_usd_per_tb: Array
    storage_w_per_tb: Array


COST_FIELDS = tuple(CostParams.__dataclass_fields__)


class PoolCost(eqx.Module):
    capex_usd_h: Array
    power_usd_h: Array
    network_usd_h: Array
    total_usd_h: Array
    power_w: Array  # at the wall, PUE included


def accelerator_pool_cost(hw: Hardware, units: Array, utilization: Array, params: CostParams):
    """$/h and wall power of ``units`` accelerators running at ``utilization`` (0-1)."""
    years = jnp.maximum(params.amortization_years, 1e-9)
    capex = units * (hw.price_usd + params.network_usd_per_accelerator) / (years * HOURS_PER_YEAR)
    load = params.idle_power_fraction + (1.0 - params.idle_power_fraction) * jnp.clip(
        utilization, 0.0, 1.0
    )
    watts = units * (hw.tdp_w * load + params.network_w_per_accelerator) * params.pue
    power = watts / 1e3 * params.electricity_usd_per_kwh
    network = units * params.network_usd_per_accelerator / (years * HOURS_PER_YEAR)
    return PoolCost(capex - network, power, network, capex + power, watts)


def memory_tier_cost(host_gb: Array, storage_tb: Array, params: CostParams) -> PoolCost:
    """Context-storage tier (host memory is inside the accelerators' all-in price)."""
    years = jnp.maximum(params.amortization_years, 1e-9)
    capex = storage_tb * params.storage_usd_per_tb / (years * HOURS_PER_YEAR)
    watts = storage_tb * params.storage_w_per_tb * params.pue
    power = watts / 1e3 * params.electricity_usd_per_kwh
    zero = jnp.zeros_like(capex) + 0.0 * host_gb
    return PoolCost(capex, power, zero, capex + power, watts)


def per_million_tokens(usd_per_hour: Array, tokens_per_s: Array) -> Array:
    """$ per million tokens; 0 when no tokens flow (the design is then infeasible anyway)."""
    return safe_div(usd_per_hour, tokens_per_s * 3600.0 / 1e6)


def tokens_per_mw(tokens_per_s: Array, power_w: Array) -> Array:
    return safe_div(tokens_per_s, power_w / 1e6)
