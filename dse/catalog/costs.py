"""Load cost parameters and API price lists from ``conf/cost/`` (one-line errors on bad input).

``conf/cost/<name>.yaml`` holds one :class:`~dse.model.cost.CostParams`; ``api_prices.yaml``
holds named :class:`~dse.model.pricing.ApiPrices` presets. Both carry a ``sources:`` mapping.
Unknown fields get a "did you mean"; non-numeric, negative or non-finite values are rejected
with the field and the file named, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import jax.numpy as jnp
import yaml

from ..files import load_yaml
from ..jax_config import configure
from ..model.cost import COST_FIELDS, CostParams
from ..model.pricing import API_PRICE_FIELDS, ApiPrices
from ..values import number
from . import registry

_METADATA = {"title", "sources", "notes"}
API_PRICES_FILE = "api_prices"


def _read(path: Path) -> dict:
    try:
        data = load_yaml(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML ({e.__class__.__name__}); fix the syntax") from e
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at top level")
    return data


def _numbers(values: dict, fields: tuple[str, ...], where: str) -> dict[str, float]:
    """Validate ``values`` against ``fields``: known names, finite numbers >= 0, none missing."""
    out: dict[str, float] = {}
    for key, value in values.items():
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"{where}: unknown field {key!r}{hint} (see conf/cost/README.md)")
        out[key] = number(f"{where}: {key}", value)
    missing = [f for f in fields if f not in out]
    if missing:
        raise ValueError(f"{where}: missing field(s) {', '.join(missing)}")
    return out


def load_cost_params(
    name: str = "default", conf_dir: Path | str | None = None, overrides: dict | None = None
) -> CostParams:
    """:class:`CostParams` from ``conf/cost/<name>.yaml`` (conf dir: ``registry.conf_dir()``),
    with ``overrides`` (field → value) applied on top and validated the same way."""
    configure()

    folder = Path(conf_dir or registry.conf_dir()) / "cost"
    path = folder / f"{name}.yaml"
    known = sorted(p.stem for p in folder.glob("*.yaml") if p.stem != API_PRICES_FILE)
    if name == API_PRICES_FILE or not path.exists():
        close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown cost config {name!r}{hint} (known: {', '.join(known)})")
    data = _read(path)
    values = {k: v for k, v in data.items() if k not in _METADATA}
    out = _numbers({**values, **(overrides or {})}, COST_FIELDS, str(path))
    if out["pue"] < 1.0:
        raise ValueError(f"{path}: pue={out['pue']:g} must be >= 1 (facility power / IT power)")
    if out["amortization_years"] <= 0:
        raise ValueError(f"{path}: amortization_years must be > 0")
    if not out["idle_power_fraction"] <= out["power_utilization"] <= 1.0:
        raise ValueError(
            f"{path}: need idle_power_fraction <= power_utilization <= 1 (draw rises with load)"
        )
    return CostParams(**{k: jnp.asarray(out[k], dtype=jnp.float64) for k in COST_FIELDS})


def api_price_names(conf_dir: Path | str | None = None) -> list[str]:
    path = Path(conf_dir or registry.conf_dir()) / "cost" / f"{API_PRICES_FILE}.yaml"
    return list(_read(path).get("presets", {}))


def load_api_prices(
    name: str, conf_dir: Path | str | None = None, overrides: dict | None = None
) -> ApiPrices:
    """The :class:`ApiPrices` preset ``name`` from ``conf/cost/api_prices.yaml``."""
    configure()
    path = Path(conf_dir or registry.conf_dir()) / "cost" / f"{API_PRICES_FILE}.yaml"
    presets = _read(path).get("presets", {})
    if name not in presets:
        close = difflib.get_close_matches(str(name), list(presets), n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"unknown API price list {name!r}{hint} (known: {', '.join(presets)}; {path})"
        )
    out = _numbers({**presets[name], **(overrides or {})}, API_PRICE_FIELDS, f"{path} [{name}]")
    return ApiPrices(**{k: jnp.asarray(out[k], dtype=jnp.float64) for k in API_PRICE_FIELDS})
