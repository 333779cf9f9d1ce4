"""Search engines over the system model, behind one entry point.

    from dse.search import search
    outcome = search("seed_rubin_lpx", ["search=optuna"])     # as `dse search study=... ...`

Pieces, for direct use: :class:`Space` (union of per-system products + continuous ranges),
:class:`Evaluator` (space points -> vectorized metrics), :func:`exhaustive_search`,
:func:`optuna_search`, ``mix_rates.hardware_mix`` (cvxpy/HiGHS MILP), ``gradients``
(``sensitivities``, ``refine``) and the Pareto utilities.
"""

from .evaluate import Evaluator as Evaluator
from .exhaustive import exhaustive_search as exhaustive_search
from .objectives import Constraint as Constraint
from .objectives import Objective as Objective
from .optuna_search import optuna_search as optuna_search
from .pareto import Front as Front
from .pareto import hypervolume as hypervolume
from .pareto import pareto_mask as pareto_mask
from .space import Space as Space
from .study import search as search
