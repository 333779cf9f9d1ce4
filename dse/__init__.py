"""dse: design-space exploration for LLM inference infrastructure serving agentic workloads.

Python API (the CLI is a thin layer over these)::

    import dse
    catalog = dse.load_catalog()                      # conf/model, conf/hardware
    out = dse.predict_frame(scenarios_dataframe)      # the `dse predict` schema
    m = dse.evaluate(arch, hw, cal.efficiency, cal.runtime, dse.make_design(tp=8, ...))

Importing dse changes no global state: the entry points above turn on JAX's float64 and the
compilation cache when first called (``dse.configure``; the CLI calls it first).
"""

from .calibration import Calibration as Calibration
from .catalog import load_catalog as load_catalog
from .jax_config import configure as configure
from .model import Design as Design
from .model import Metrics as Metrics
from .model import evaluate as evaluate
from .model import make_design as make_design
from .model.batched import evaluate_many as evaluate_many
from .predict import predict_frame as predict_frame
from .stack import Stack as Stack
from .version import __version__ as __version__
