"""Strict JAX for every test: float64, no implicit rank or dtype promotion (as Equinox/Diffrax do)."""

import jax
import pytest

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")


@pytest.fixture(scope="session")
def catalog():
    from dse.catalog import load_catalog

    return load_catalog()
