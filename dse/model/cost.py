"""Money and power of owned serving capacity: capex, electricity, scale-out network, facility.

Why a model and not a rental price: rental prices move ±40 % a year (hardware.md §7) and do not
exist for unreleased parts; an owner's $/h follows from a few sourced numbers
(``conf/cost/default.yaml``) and responds to design changes (more units, lower utilization).

Per accelerator pool of ``units``:

* capex: the all-in ``price_usd`` of ``conf/hardware`` (rack share, host CPUs and NVLink switches
  included where sold as a rack) recovered over ``amortization_years`` (straight line, or the
  capital recovery factor when ``cost_of_capital > 0``), plus the scale-out network share
  (NICs/optics/switch ports beyond the rack: rack prices exclude them, hardware.md §7);
* power: rated IT power ``tdp_w * it_power_per_tdp`` (rack or node per W of accelerator TDP)
  drawn at ``idle + (busy - idle) * utilization`` of rating — an idle floor because a serving
  pool holds its weights and clocks whether or not requests arrive, and a busy level below 1
  because inference rarely reaches TDP (POLCA, arXiv:2308.12908) — plus the network's watts,
  times ``pue``, at ``electricity_usd_per_kwh``;
* facility: data-hall rent per rated IT kW (CBRE wholesale asking rate; power billed apart).

All functions are pure JAX (float64, vmap/grad-safe); every division goes through ``safe_div``.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jax import Array

from .hardware import Hardware
from .numerics import safe_div

HOURS_PER_YEAR = 8760.0
HOURS_PER_MONTH = HOURS_PER_YEAR / 12.0


class CostParams(eqx.Module):
    """Cost and power assumptions (``conf/cost/<name>.yaml``; sources live there)."""

    amortization_years: Array
    cost_of_capital: Array  # per year; 0 = straight-line depreciation
    electricity_usd_per_kwh: Array
    pue: Array  # facility power / IT power
    it_power_per_tdp: Array  # rated rack/node IT W per W of accelerator TDP
    idle_power_fraction: Array  # IT draw at zero load, fraction of rated
    power_utilization: Array  # IT draw at full load, fraction of rated
    network_usd_per_accelerator: Array
    network_w_per_accelerator: Array
    facility_usd_per_kw_month: Array  # per rated IT kW
    host_dram_usd_per_gb: Array  # host memory beyond the accelerator's price
    host_dram_w_per_gb: Array
    storage_usd_per_tb: Array  # context-storage tier (drives + servers + DPUs)
    storage_w_per_tb: Array
    storage_gbs_per_tb: Array  # read bandwidth the drives of one TB provide
    # Hypothetical hardware (model/hypothetical.py): price shares per unit scale of a spec.
    compute_price_share: Array
    hbm_gb_price_share: Array
    hbm_bw_price_share: Array
    scaleup_price_share: Array
    sram_usd_per_mb: Array
    compute_power_share: Array  # TDP shares per unit scale
    hbm_power_share: Array


COST_FIELDS: tuple[str, ...] = tuple(CostParams.__dataclass_fields__)


class PoolCost(eqx.Module):
    """$/h by kind and wall power (PUE included) of a pool or tier; add them with ``+``."""

    capex_usd_h: Array
    power_usd_h: Array
    network_usd_h: Array
    facility_usd_h: Array
    total_usd_h: Array
    power_w: Array

    def __add__(self, other: PoolCost) -> PoolCost:
        return PoolCost(*(a + b for a, b in zip(_fields(self), _fields(other))))


def _fields(c: PoolCost) -> tuple[Array, ...]:
    return tuple(getattr(c, f) for f in PoolCost.__dataclass_fields__)


def capital_recovery_per_year(params: CostParams) -> Array:
    """Fraction of capex charged per year: ``1/n`` (straight line) or ``r / (1 - (1+r)^-n)``."""
    n = jnp.maximum(params.amortization_years, 1e-9)
    r = params.cost_of_capital
    ok = r > 1e-9
    safe_r = jnp.where(ok, r, 1.0)
    annuity = safe_r / (1.0 - (1.0 + safe_r) ** (-n))
    return jnp.where(ok, annuity, 1.0 / n)


def amortized_usd_h(capex_usd: Array, params: CostParams) -> Array:
    """$/h that recovers ``capex_usd`` over the amortization period."""
    return capex_usd * capital_recovery_per_year(params) / HOURS_PER_YEAR


def draw_fraction(utilization: Array, params: CostParams) -> Array:
    """IT draw as a fraction of rated power at ``utilization`` in [0, 1] (linear idle→busy)."""
    u = jnp.clip(utilization, 0.0, 1.0)
    idle = params.idle_power_fraction
    return idle + (params.power_utilization - idle) * u


def _cost(capex_usd, network_usd, rated_it_w, it_w, params: CostParams) -> PoolCost:
    capex = amortized_usd_h(capex_usd, params)
    network = amortized_usd_h(network_usd, params)
    wall_w = it_w * params.pue
    power = wall_w / 1e3 * params.electricity_usd_per_kwh
    facility = rated_it_w / 1e3 * params.facility_usd_per_kw_month / HOURS_PER_MONTH
    return PoolCost(capex, power, network, facility, capex + network + power + facility, wall_w)


def accelerator_pool_cost(
    hw: Hardware, units: Array, utilization: Array, params: CostParams
) -> PoolCost:
    """$/h and wall power of ``units`` accelerators of ``hw`` busy ``utilization`` of the time."""
    server_w = units * hw.tdp_w * params.it_power_per_tdp
    network_w = units * params.network_w_per_accelerator
    it_w = server_w * draw_fraction(utilization, params) + network_w
    return _cost(
        units * hw.price_usd,
        units * params.network_usd_per_accelerator,
        server_w + network_w,
        it_w,
        params,
    )


def memory_tier_cost(
    host_gb: Array, storage_tb: Array, params: CostParams, storage_gbs: Array | float = 0.0
) -> PoolCost:
    """KV-offload tiers: host DRAM beyond what the accelerators' prices include, and context
    storage. Storage is priced for ``max(storage_tb, storage_gbs / storage_gbs_per_tb)`` TB: a
    tier asked for more read bandwidth than its capacity gives needs more drives. Both draw their
    rated power all the time (DRAM refresh; drives serving restores)."""
    tb = jnp.maximum(storage_tb, safe_div(storage_gbs, params.storage_gbs_per_tb))
    capex = host_gb * params.host_dram_usd_per_gb + tb * params.storage_usd_per_tb
    it_w = host_gb * params.host_dram_w_per_gb + tb * params.storage_w_per_tb
    return _cost(capex, jnp.zeros_like(capex), it_w, it_w, params)


def usd_per_gpu_hour(hw: Hardware, params: CostParams, utilization: Array | float = 1.0) -> Array:
    """All-in owner's $ per accelerator-hour (comparable to a rental price, without margin)."""
    one = jnp.ones_like(hw.price_usd)
    return accelerator_pool_cost(hw, one, one * utilization, params).total_usd_h


def per_million_tokens(usd_per_hour: Array, tokens_per_s: Array, fallback: float = 0.0) -> Array:
    """$ per million tokens. Where no tokens flow it returns ``fallback`` (0 by convention, as in
    the system metrics, where such designs are flagged infeasible; pass a large value when
    minimizing over unmasked designs). Finite value and gradient either way."""
    return safe_div(usd_per_hour, tokens_per_s * 3600.0 / 1e6, fallback)


def tokens_per_mw(tokens_per_s: Array, power_w: Array) -> Array:
    """Tokens per second per megawatt at the wall (0 where no power is drawn)."""
    return safe_div(tokens_per_s, power_w / 1e6)


class PhaseCost(eqx.Module):
    """$ per million tokens of each kind of work, and the infrastructure's own cache discount."""

    uncached_input_usd_per_mtok: Array
    cached_input_usd_per_mtok: Array
    output_usd_per_mtok: Array
    cached_to_uncached: Array  # compare with an API's cache_read_multiplier (0.1)


def split_cost_by_phase(
    prefill_usd_h: Array,
    decode_usd_h: Array,
    cache_usd_h: Array,
    uncached_input_tok_s: Array,
    cached_input_tok_s: Array,
    output_tok_s: Array,
) -> PhaseCost:
    """Apportion each pool's $/h to the work it does: prefill pool → uncached input tokens,
    decode (and FFN) pools → output tokens, cache tiers plus restores → cached input tokens.

    Callers split shared pools first (aggregated serving: the decode pool's $/h by its share of
    step time spent prefilling). ``cached_to_uncached`` is what serving a cached token costs
    relative to prefilling it on this hardware — the infrastructure counterpart of the ~0.1
    read multiplier APIs charge (``dse.model.pricing``)."""
    uncached = per_million_tokens(prefill_usd_h, uncached_input_tok_s)
    cached = per_million_tokens(cache_usd_h, cached_input_tok_s)
    output = per_million_tokens(decode_usd_h, output_tok_s)
    return PhaseCost(uncached, cached, output, safe_div(cached, uncached))
