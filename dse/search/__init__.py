"""Search engines over the model (the search issue builds on these pieces)."""

from .pareto import Front as Front
from .pareto import hypervolume as hypervolume
from .pareto import pareto_mask as pareto_mask
