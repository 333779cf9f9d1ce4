"""Optuna samplers as the batched search uses them: ``make_sampler(name, seed, population)``.

``optuna_search`` asks a whole batch, evaluates it in one vectorized call, then tells it, and
builds a fresh sampler for every batch, seeded by ``(seed, worker, trials seen)`` so that a
resumed run asks what an uninterrupted one would. Two consequences shape the samplers here:

* **NSGA-II** (:class:`BatchNSGAII`): Optuna's ``NSGAIISampler`` redoes O(trials so far) work on
  every ask (listing the study's trials to place the new trial in a generation, reading the
  parent population from study attributes, recomputing the intersection search space). Between
  the asks of one batch nothing is told, so all of it is constant within the batch: here it is
  computed once, on the batch's first ask, from the study itself (which is why a resumed run
  needs no state of its own). ``tests/search/test_samplers.py`` checks that it asks exactly the
  parameters the stock sampler asks, batch after batch.
* **TPE** keeps Optuna 5's ``constant_liar`` (asked, untold trials count as bad results, so one
  batch's asks differ), pinned here. Its repeats grow as it converges on a discrete space (small
  benchmark space: 718 distinct designs in 1,024 trials) and each ask costs O(trials so far)
  (~50 ms at 1,000 trials on 2 cores), so NSGA-II is the default for large budgets.
"""

from __future__ import annotations

import optuna

SAMPLERS = ("nsga2", "nsga3", "tpe", "random")
_COMPLETE = optuna.trial.TrialState.COMPLETE


class BatchNSGAII(optuna.samplers.NSGAIISampler):
    """Optuna's NSGA-II with its per-ask bookkeeping done once per sampler: the same trials in
    the same order as ``NSGAIISampler`` when, as in ``optuna_search``, a sampler serves one
    batch of asks with no tell in between. Told trials still update the counts, so a sampler
    reused across tells stays correct (only slower to notice a new generation than never)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self._generation: tuple[int, int] | None = None  # (newest generation, its complete trials)
        self._completed = 0
        self._parents: dict[int, list] = {}
        self._space: tuple[int, dict] | None = None

    def _count(self, study) -> tuple[int, int]:
        """(the newest generation among complete trials, how many complete trials it has), read
        from the study once: the stock sampler's cache rebuilt in one pass."""
        if self._generation is None:
            key, newest, members, completed = self._get_generation_key(), 0, 0, 0
            for trial in study._get_trials(deepcopy=False, use_cache=True):
                if trial.state != _COMPLETE:
                    continue
                completed += 1
                generation = trial.system_attrs.get(key)
                if generation is None:
                    continue
                if generation > newest:
                    newest, members = generation, 1
                elif generation == newest:
                    members += 1
            self._generation, self._completed = (newest, members), completed
        return self._generation

    def get_trial_generation(self, study, trial):
        key = self._get_generation_key()
        generation = trial.system_attrs.get(key)
        if generation is not None:
            return generation
        newest, members = self._count(study)
        generation = newest + (members >= self.population_size)  # as BaseGASampler decides
        study._storage.set_trial_system_attr(trial._trial_id, key, generation)
        return generation

    def get_parent_population(self, study, generation):
        if generation == 0:
            return []
        if generation not in self._parents:
            # The stock method selects (or reads the study's cache of) the parents; its list is
            # what every later ask of this generation reads back, in trial-number order.
            parents = super().get_parent_population(study, generation)
            self._parents[generation] = sorted(parents, key=lambda t: t.number)
            return parents
        return self._parents[generation]

    def infer_relative_search_space(self, study, trial):
        self._count(study)
        if self._space is None or self._space[0] != self._completed:
            self._space = (self._completed, super().infer_relative_search_space(study, trial))
        return dict(self._space[1])

    def after_trial(self, study, trial, state, values):
        super().after_trial(study, trial, state, values)
        if state == _COMPLETE and self._generation is not None:
            self._completed += 1
            newest, members = self._generation
            generation = trial.system_attrs.get(self._get_generation_key(), -1)
            if generation > newest:
                self._generation = (generation, 1)
            elif generation == newest:
                self._generation = (newest, members + 1)


# The stock sampler's study-attribute keys (Optuna derives them from the class name): journals
# written before this class existed resume unchanged, and the two samplers are interchangeable.
BatchNSGAII._GENERATION_KEY = optuna.samplers.NSGAIISampler._get_generation_key()
BatchNSGAII._PARENT_CACHE_KEY_PREFIX = optuna.samplers.NSGAIISampler._get_parent_cache_key_prefix()


def make_sampler(name: str, seed: int, population: int = 100) -> optuna.samplers.BaseSampler:
    """The sampler ``search.sampler=name`` names, seeded (``population``: the evolutionary
    samplers' population size)."""
    name = str(name).lower()
    if name == "nsga2":
        return BatchNSGAII(population_size=population, seed=seed)
    if name == "nsga3":
        return optuna.samplers.NSGAIIISampler(population_size=population, seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"search.sampler={name!r} is not one of {', '.join(SAMPLERS)}")


__all__ = ["SAMPLERS", "BatchNSGAII", "make_sampler"]
