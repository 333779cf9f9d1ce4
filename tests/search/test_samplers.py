"""The batched search's samplers: BatchNSGAII asks exactly what Optuna's NSGA-II asks (batch by
batch, a fresh sampler per batch as optuna_search makes them, generations spanning batches)."""

import optuna
import pytest

from dse.search.samplers import BatchNSGAII, make_sampler

CHOICES = list(range(8))


def _objectives(p):
    a, b, c, d = (p[k] for k in "abcd")
    return [a + b - 0.3 * c, c + d - 0.2 * a * b]  # two conflicting goals, many ties


def _run(make, batches: int, batch: int) -> list[list[dict]]:
    """optuna_search's loop on a toy problem: per batch a new sampler seeded by the trials seen,
    every ask before any tell, one feasibility constraint."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=["maximize", "maximize"])
    asked = []
    for _ in range(batches):
        study.sampler = make(len(study.trials))
        trials = [study.ask() for _ in range(batch)]
        params = [{k: t.suggest_categorical(k, CHOICES) for k in "abcd"} for t in trials]
        for t, p in zip(trials, params):
            t.set_constraint("feasible", float(p["a"] - 6))  # a <= 6 is feasible
            study.tell(t, _objectives(p))
        asked.append(params)
    return asked


@pytest.mark.parametrize("population, batch", [(16, 16), (32, 16), (16, 32)])
def test_batch_nsga2_asks_what_the_stock_sampler_asks(population, batch):
    stock = _run(lambda n: optuna.samplers.NSGAIISampler(population_size=population, seed=n),
                 batches=8, batch=batch)  # fmt: skip
    fast = _run(lambda n: BatchNSGAII(population_size=population, seed=n), batches=8, batch=batch)
    assert fast == stock
    assert len({tuple(p.values()) for b in fast[3:] for p in b}) > batch  # it does evolve


def test_batch_nsga2_uses_the_stock_study_keys():
    # journals written by the stock sampler resume with this one (and back)
    stock = optuna.samplers.NSGAIISampler
    assert BatchNSGAII._get_generation_key() == stock._get_generation_key()
    assert BatchNSGAII._get_parent_cache_key_prefix() == stock._get_parent_cache_key_prefix()
    assert isinstance(make_sampler("nsga2", 0, 8), BatchNSGAII)


def test_an_unknown_sampler_is_one_line():
    with pytest.raises(ValueError, match="search.sampler='cmaes' is not one of nsga2, nsga3"):
        make_sampler("cmaes", 0)
