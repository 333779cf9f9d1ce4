"""dse: design-space exploration for LLM inference infrastructure serving agentic workloads.

Python API (the CLI is a thin layer over these)::

    import dse
    catalog = dse.load_catalog()                      # conf/model, conf/hardware
    out = dse.predict_frame(scenarios_dataframe)      # the `dse predict` schema
    m = dse.evaluate(arch, hw, cal.efficiency, cal.runtime, dse.make_design(tp=8, ...))
"""

import jax

# Performance models mix 1e15 FLOP/s with 1e-9 s terms; float32 loses the small ones.
jax.config.update("jax_enable_x64", True)


def _enable_compilation_cache() -> None:
    """Persist compiled model kernels (each serving path takes seconds to compile) so repeated
    CLI runs start fast: ~/.cache/dse/jax, or $DSE_JAX_CACHE; DSE_JAX_CACHE=off disables it.
    A cache the user configured for JAX is left alone."""
    import os

    where = os.environ.get(
        "DSE_JAX_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "dse", "jax")
    )
    if where.lower() in ("", "0", "off", "none") or jax.config.jax_compilation_cache_dir:
        return
    jax.config.update("jax_compilation_cache_dir", where)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


_enable_compilation_cache()

from .calibration import Calibration as Calibration  # noqa: E402
from .catalog import load_catalog as load_catalog  # noqa: E402
from .model import (
    Design as Design,
)  # noqa: E402
from .model import (
    Metrics as Metrics,
)
from .model import (
    evaluate as evaluate,
)
from .model import (
    make_design as make_design,
)
from .model.batched import evaluate_many as evaluate_many  # noqa: E402
from .scenarios import predict_frame as predict_frame  # noqa: E402
from .stack import Stack as Stack  # noqa: E402

__version__ = "0.1.0"
