"""The performance model: pure JAX functions of one design point (vmap/jit them to batch)."""

from .design import (
    DTYPE_BITS as DTYPE_BITS,
)
from .design import (
    MODES as MODES,
)
from .design import (
    PHASES as PHASES,
)
from .design import (
    Design as Design,
)
from .design import (
    make_design as make_design,
)
from .efficiency import (
    EFFICIENCY_FIELDS as EFFICIENCY_FIELDS,
)
from .efficiency import (
    Efficiency as Efficiency,
)
from .efficiency import (
    Runtime as Runtime,
)
from .efficiency import (
    default_runtime as default_runtime,
)
from .efficiency import (
    prior_efficiency as prior_efficiency,
)
from .metrics import (
    BOUNDS as BOUNDS,
)
from .metrics import (
    METRIC_FIELDS as METRIC_FIELDS,
)
from .metrics import (
    Metrics as Metrics,
)
from .reasons import REASON_TEXT as REASON_TEXT
from .reasons import REASONS as REASONS
from .serving import evaluate as evaluate
from .serving import tokens_per_step as tokens_per_step
