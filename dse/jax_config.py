"""JAX's process-wide settings, owned by dse's entry points and never by ``import dse``.

The CLI calls :func:`configure` first; so do the Python entry points that build model inputs
(``load_catalog``, ``Calibration.load``, ``Stack``, ``predict_frame``, ``profile_for``), so a
script that starts from any of them gets float64 without asking. A program that embeds dse
and has configured JAX itself keeps its compilation cache.
"""

from __future__ import annotations

import os

import jax


def configure(*, compile_cache: bool = True) -> None:
    """Turn on float64 (performance models mix 1e15 FLOP/s with 1e-9 s terms; float32 loses
    the small ones) and, with ``compile_cache``, persist compiled model kernels so repeated runs
    start fast: ~/.cache/dse/jax, or $DSE_JAX_CACHE; DSE_JAX_CACHE=off disables it, and a cache
    the user configured for JAX is left alone. Idempotent."""
    if not jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", True)
    if not compile_cache:
        return
    where = os.environ.get(
        "DSE_JAX_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "dse", "jax")
    )
    if where.lower() in ("", "0", "off", "none") or jax.config.jax_compilation_cache_dir:
        return
    jax.config.update("jax_compilation_cache_dir", where)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
