"""The one interface every search engine implements, as Diffrax's solvers or Optax's
transformations do: an engine is a small frozen object holding its settings, and ``run`` takes a
:class:`Problem` and gives a :class:`Found`. The study (``study.py``) builds the problem, the
engine searches, the study writes what was found.

Engines (one file each, beside the algorithm they drive; chosen by ``_target_`` in
``conf/search/*.yaml``, the one place their defaults live):

- :class:`~dse.search.exhaustive.Exhaustive`: every point, streaming Pareto filter, checkpoints;
- :class:`~dse.search.optuna_search.Optuna`: batched ask/tell on persistent storage;
- :class:`~dse.search.mix_rates.HardwareMix`: the least-cost hardware mix for a demand (MILP);
- :class:`~dse.search.gradients.Gradients`: wraps a Pareto engine and adds sensitivities and
  projected-gradient refinement at its frontier.
"""

from __future__ import annotations

import abc
import dataclasses
import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pandas as pd

from ..progress import Progress
from ..stack import Stack
from .objectives import Constraint, Objective, meets
from .pareto import Front
from .results import best_configs
from .space import Space


@dataclass(frozen=True)
class SearchResult:
    front: Front  # objective values and global point ids (union of the per-system fronts)
    evaluated: int
    feasible: int  # feasible and meeting the constraints
    space: Space
    points: pd.DataFrame | None = None  # every evaluated point (small spaces / Optuna trials)
    front_table: pd.DataFrame | None = None


@dataclass(frozen=True)
class Problem:
    """What an engine searches: the model of one LLM on a stack, a space, objectives and
    constraints, and the run folder where it may persist state (checkpoints, journals)."""

    stack: Stack
    model: str
    out: Path
    space: Space | None = None  # None for engines that build their own options (HardwareMix)
    objectives: tuple[Objective, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    rank: Objective | None = None  # the objective that orders the best configurations
    best_where: tuple[Constraint, ...] = ()  # where the best configurations are chosen from
    shown: int = 5  # how many best configurations the report shows (report.top)
    fingerprint: str = ""  # hash of every setting that changes results: guards resumption
    name: str = "dse"  # the run's name in shared storage (Optuna study name)

    def best(self, frontier: pd.DataFrame) -> pd.DataFrame:
        """The best configurations: the frontier rows meeting ``best_where``, ranked."""
        chosen = frontier
        if self.best_where and len(frontier):
            chosen = frontier[meets({c: frontier[c] for c in frontier}, self.best_where)]
        return best_configs(chosen, self.objectives, self.rank)


@dataclass(frozen=True)
class Found:
    """What an engine found. ``result``: a Pareto engine's front and counts (None for the
    MILP); ``tables``: further tables to write beside the frontier (``mix``, ``refined``,
    ``sensitivities``); ``summary``: engine-specific lines for ``summary.json``; ``extra``:
    the engine's own result objects for Python callers (e.g. the ``MixResult``); ``answer``:
    a non-Pareto engine's one answer (the mix), shown where a frontier's best would be."""

    result: SearchResult | None
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    answer: pd.DataFrame | None = None


class Unfinished(Exception):
    """An engine found something, then failed in a later stage (the gradients after a sweep):
    the study writes ``found`` before it raises ``error``, so nothing computed is lost."""

    def __init__(self, found: Found, error: BaseException):
        super().__init__(str(error))
        self.found, self.error = found, error


class Engine(abc.ABC):
    """A search strategy. Subclasses are frozen dataclasses whose fields are the settings in
    their ``conf/search/*.yaml`` (no defaults in Python: the config is the one place)."""

    name: ClassVar[str]  # what summary.json and the report call it
    pareto: ClassVar[bool] = True  # searches a space for a frontier (else: builds its own)

    @abc.abstractmethod
    def run(self, problem: Problem, progress: Progress) -> Found:
        """Search ``problem``; persist resumable state under ``problem.out`` only."""

    def ahead(self, problem: Problem) -> tuple[Callable[[], object], ...]:
        """Work ``run`` will need whatever the search finds (compiling a program it calls
        later), for the caller to start early. Engines start no threads: the entry point
        (``study.run_study``) runs these in the background while ``run`` searches; ``run``
        does not depend on it (the work is only done sooner)."""
        return ()


def engine_from_config(settings: dict, where: str = "search") -> Engine:
    """The engine a ``conf/search`` mapping describes (``_target_`` + its settings, nested
    engines as nested mappings), each setting checked: an unknown one gets a did-you-mean
    line, a missing one says which files give it. ``_target_`` is Hydra's convention: the
    dotted path of the class."""
    settings = dict(settings)
    target = settings.get("_target_")
    if not target:
        raise ValueError(
            f"{where}: no _target_; pick an engine with search=exhaustive|optuna|milp|gradient "
            "(conf/search/)"
        )
    module, _, attribute = str(target).rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError, ValueError):
        raise ValueError(f"{where}._target_={target!r} is not an importable class") from None
    if not (isinstance(cls, type) and issubclass(cls, Engine)):
        raise ValueError(f"{where}._target_={target!r} is not a dse search engine")
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    for key, value in settings.items():
        if key == "_target_":
            continue
        if key not in names:
            near = difflib.get_close_matches(str(key), names, n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            raise ValueError(
                f"{where}: unknown setting {key!r}; {hint}{cls.__name__} takes {', '.join(names)}"
            )
        if isinstance(value, dict) and "_target_" in value:
            settings[key] = engine_from_config(value, f"{where}.{key}")
    missing = [n for n in names if n not in settings]
    if missing:
        raise ValueError(
            f"{where}: missing setting(s) {', '.join(missing)} for {cls.__name__}; the files in "
            "conf/search/ give every setting a value"
        )
    try:
        return cls(**{k: v for k, v in settings.items() if k != "_target_"})
    except ValueError as e:  # name a nested engine's setting where it is: search.base.chunk
        if where == "search" or not str(e).startswith("search."):
            raise
        raise ValueError(where + str(e)[len("search") :]) from None


def engine_config(engine: Engine) -> dict:
    """``engine`` as the ``conf/search`` mapping that builds it (nested engines nested):
    what a run folder's ``config.yaml`` records when a Python caller passed an object."""
    cls = type(engine)
    out: dict = {"_target_": f"{cls.__module__}.{cls.__qualname__}"}
    for f in dataclasses.fields(engine):
        value = getattr(engine, f.name)
        out[f.name] = engine_config(value) if isinstance(value, Engine) else value
    return out
