"""The performance model: pure JAX functions of one design point (vmap/jit them to batch)."""

from .design import DTYPE_BITS as DTYPE_BITS, MODES as MODES, PHASES as PHASES, Design as Design, make_design as make_design
from .efficiency import (
    EFFICIENCY_FIELDS as EFFICIENCY_FIELDS,
    Efficiency as Efficiency,
    Runtime as Runtime,
    default_runtime as default_runtime,
    prior_efficiency as prior_efficiency,
)
from .metrics import BOUNDS as BOUNDS, METRIC_FIELDS as METRIC_FIELDS, REASON_TEXT as REASON_TEXT, REASONS as REASONS, Metrics as Metrics
from .serving import evaluate as evaluate, tokens_per_step as tokens_per_step
