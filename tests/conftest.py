"""Strict JAX for every test: float64, no implicit rank or dtype promotion (as Equinox/Diffrax do)."""

import jax
import pytest

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")


def pytest_xdist_auto_num_workers(config):
    """``-n auto`` (pyproject's addopts): one worker per core, at most one per 10 GB of memory.
    Compiling the system model is single-threaded in XLA and dominates the suite, so two
    workers on two cores nearly halve it; a worker peaks near 9 GB while compiling."""
    import os

    try:
        memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (ValueError, OSError):
        memory_gb = 16.0
    return max(1, min(os.cpu_count() or 1, int(memory_gb // 10)))


@pytest.fixture(scope="session")
def catalog():
    from dse.catalog import load_catalog

    return load_catalog()
