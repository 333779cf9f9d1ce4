"""The dse Hydra sweeper: sweep overrides on design fields become the Optuna search space of
ONE in-process study (trials asked and evaluated in vectorized batches); sweeps over anything
else (workload, model, hardware, cost, ...) fan out as separate studies through the launcher.

    dse search -m hydra/sweeper=dse study=blackwell_vs_rubin \\
        'batch=choice(1,4,16,64)' 'tp=range(1,9)' 'hbm_bw_scale=interval(0.5,2.0)' \\
        workload=agentic_coding,chat hydra.sweeper.n_trials=3000

``choice``/``range``/comma lists on a SystemDesign field (or ``system``/``software``) replace that
field's choices in the study's space; ``interval`` makes it continuous (``tag(log, interval(..))``
for a log scale). The official hydra-optuna-sweeper launches one Hydra job per trial (~0.1 s
each, ecosystem.md §1.3) and pins optuna<3; here a trial costs microseconds.
"""


import itertools
from dataclasses import dataclass
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class DseSweeperConf:
    _target_: str = "hydra_plugins.dse_sweeper.dse_sweeper.DseSweeper"
    engine: str = "optuna"  # or exhaustive: sweep the same space point by point
    # Optuna settings; null: conf/search/optuna.yaml's (the one place engine defaults live).
    sampler: Optional[str] = None
    n_trials: Optional[int] = None
    batch: Optional[int] = None
    population: Optional[int] = None
    seed: Optional[int] = None


ConfigStore.instance().store(group="hydra/sweeper", name="dse", node=DseSweeperConf, provider="dse")


def _design_fields() -> set[str]:
    from dse.model.system_design import SYSTEM_FIELDS

    return set(SYSTEM_FIELDS) | {"system", "software"}


def _value(x) -> str:
    return repr(x) if isinstance(x, str) else str(x)


def translate(arguments: list[str], fields: set[str]) -> tuple[list[str], list[list[str]]]:
    """(space/search overrides common to every job, outer sweep: one list per swept key)."""
    parsed = OverridesParser.create().parse_overrides(arguments)
    common, outer = [], []
    for o in parsed:
        key = o.get_key_element()
        if key in fields:
            v = o.value()
            if isinstance(v, IntervalSweep):
                log = "log" in (v.tags or set())
                common.append(f"++space.continuous.{key}={{low:{v.start},high:{v.end},log:{str(log).lower()}}}")
                continue
            if isinstance(v, (ChoiceSweep, RangeSweep)) or o.is_sweep_override():
                values = list(o.sweep_iterator())
            else:
                values = [v]
            common.append(f"++space.choices.{key}=[{','.join(_value(x) for x in values)}]")
        elif o.is_sweep_override():
            outer.append([f"{key}={x}" for x in o.sweep_string_iterator()])
        else:
            common.append(o.input_line)
    return common, outer


class DseSweeper(Sweeper):
    def __init__(self, engine="optuna", sampler=None, n_trials=None, batch=None,
                 population=None, seed=None):  # fmt: skip
        self.opts = dict(engine=engine, sampler=sampler, n_trials=n_trials, batch=batch,
                         population=population, seed=seed)  # fmt: skip
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None
        self.launcher = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:  # fmt: skip
        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        common, outer = translate(list(arguments), _design_fields())
        o = self.opts
        if not any(a.split("=")[0].lstrip("+~") == "search" for a in common):
            common.append(f"search={o['engine']}")
        if o["engine"] == "optuna":
            common += [f"++search.{k}={o[k]}" for k in ("sampler", "n_trials", "batch", "population", "seed")
                       if o[k] is not None]  # fmt: skip
        jobs = [common + list(combo) for combo in itertools.product(*outer)] or [common]
        self.validate_batch_is_legal(jobs)
        return self.launcher.launch(jobs, initial_job_idx=0)
