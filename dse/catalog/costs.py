"""Load cost parameters (``conf/cost/<name>.yaml``) into a :class:`~dse.model.cost.CostParams`."""

from __future__ import annotations

import difflib
import math
from pathlib import Path

import jax.numpy as jnp
import yaml

from ..model.cost import COST_FIELDS, CostParams
from .registry import conf_dir

_METADATA = {"title", "sources", "notes"}


def load_cost_params(
    name: str = "default", root: Path | None = None, overrides: dict | None = None
) -> CostParams:
    """Cost parameters from ``conf/cost/<name>.yaml`` with optional overrides; one-line errors."""
    path = (root or conf_dir()) / "cost" / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise ValueError(f"unknown cost config {name!r} (known: {', '.join(known)})")
    data = yaml.safe_load(path.read_text()) or {}
    values = {**{k: v for k, v in data.items() if k not in _METADATA}, **(overrides or {})}
    out = {}
    for key, value in values.items():
        if key not in COST_FIELDS:
            close = difflib.get_close_matches(key, COST_FIELDS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"{path}: unknown cost field {key!r}{hint}")
        try:
            x = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{path}: {key}={value!r} is not a number") from None
        if not math.isfinite(x) or x < 0:
            raise ValueError(f"{path}: {key}={value!r} must be a finite number >= 0")
        out[key] = x
    missing = set(COST_FIELDS) - set(out)
    if missing:
        raise ValueError(f"{path}: missing cost field(s) {sorted(missing)}")
    if out["pue"] < 1.0:
        raise ValueError(f"{path}: pue={out['pue']:g} must be >= 1 (facility power / IT power)")
    return CostParams(**{k: jnp.asarray(out[k], dtype=jnp.float64) for k in COST_FIELDS})
