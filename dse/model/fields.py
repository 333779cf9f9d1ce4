"""The model's typed inputs from a config mapping: one rule for every table of fields."""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array


def arrays_from_mapping(values: dict, defaults: dict[str, float], what: str) -> dict[str, Array]:
    """Each field of ``defaults`` as a float64 scalar array: the mapping's value, else the
    default (a YAML null counts as 0). A field the table does not know is refused, naming
    ``what`` (``hardware``, ``host``, ``architecture``), never dropped."""
    unknown = set(values) - set(defaults)
    if unknown:
        raise ValueError(f"unknown {what} field(s): {sorted(unknown)}")
    return {
        k: jnp.asarray(float(values.get(k, d) or 0.0), dtype=jnp.float64)
        for k, d in defaults.items()
    }
