"""Search engines over the system model, behind one entry point.

    import dse.search
    outcome = dse.search.run("seed_rubin_lpx", engine="optuna")   # as `dse search study=... search=optuna`

Every engine implements :class:`Engine` (``run(problem, progress) -> Found``) and is chosen by
``_target_`` in ``conf/search/*.yaml``, where its defaults live: :class:`Exhaustive`,
:class:`Optuna`, :class:`HardwareMix` (cvxpy/HiGHS MILP) and :class:`Gradients` (a Pareto
engine, then sensitivities and refinement). Pieces, for direct use: :class:`Space` (union of
per-system products + continuous ranges), :class:`Evaluator` (space points -> vectorized
metrics), the algorithms the engines drive (``exhaustive.exhaustive_search``,
``optuna_search.optuna_search``, ``gradients.sensitivities``/``refine``, ``mix_rates.hardware_mix``;
the package does not re-export them, so ``dse.search.optuna_search`` is the module that
``_target_`` names) and the Pareto utilities.
"""

from .engine import Engine as Engine
from .engine import Found as Found
from .engine import Problem as Problem
from .evaluate import Evaluator as Evaluator
from .exhaustive import Exhaustive as Exhaustive
from .gradients import Gradients as Gradients
from .mix_rates import HardwareMix as HardwareMix
from .objectives import Constraint as Constraint
from .objectives import Objective as Objective
from .optuna_search import Optuna as Optuna
from .pareto import Front as Front
from .pareto import hypervolume as hypervolume
from .pareto import pareto_mask as pareto_mask
from .space import Space as Space
from .study import run as run
