"""The one engine interface: every conf/search file builds its engine, the configs hold every
default, bad settings are one line, and a Python caller's engine object runs (and is recorded)
exactly as the config that describes it."""

import dataclasses

import pytest
import yaml

from dse.files import conf_dir
from dse.search import Engine, Exhaustive, Gradients, HardwareMix, Optuna, run
from dse.search.engine import engine_config, engine_from_config
from dse.search.study import compose
from tests.support import SMALL_STUDY

ENGINES = {"exhaustive": Exhaustive, "optuna": Optuna, "milp": HardwareMix, "gradient": Gradients,
           "sensitivities": Gradients, "optuna_large": Optuna, "gradient_optuna": Gradients,
           "dask": Exhaustive}  # fmt: skip


def _search_config(name: str) -> dict:
    from omegaconf import OmegaConf

    cfg, _ = compose(None, [f"search={name}"])
    return OmegaConf.to_container(cfg.search, resolve=True)


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_every_search_config_builds_its_engine_and_round_trips(name):
    engine = engine_from_config(_search_config(name))
    assert type(engine) is ENGINES[name] and isinstance(engine, Engine)
    assert engine_from_config(engine_config(engine)) == engine


def test_the_configs_are_the_one_place_engine_defaults_live():
    """No engine setting has a Python default, so conf/search/*.yaml cannot disagree with the
    code (issue 18: study.py said n_trials 2000 where optuna.yaml said 4000)."""
    for cls in ENGINES.values():
        with_default = [f.name for f in dataclasses.fields(cls)
                        if f.default is not dataclasses.MISSING
                        or f.default_factory is not dataclasses.MISSING]  # fmt: skip
        assert not with_default, f"{cls.__name__}: {with_default}"
    files = {p.stem for p in (conf_dir() / "search").glob("*.yaml")}
    assert files == set(ENGINES)
    for name in files:  # every file names its engine's class or builds on one that does
        text = yaml.safe_load((conf_dir() / "search" / f"{name}.yaml").read_text())
        assert "_target_" in text or text["defaults"][0] in ENGINES


def test_a_study_can_switch_engines_without_leftover_settings():
    """Studies pick a search config rather than adding engine settings of their own, so the
    README's `study=X search=optuna` works for every shipped study."""
    for study in sorted(p.stem for p in (conf_dir() / "study").glob("*.yaml")):
        assert "search" not in (
            yaml.safe_load((conf_dir() / "study" / f"{study}.yaml").read_text()) or {}
        )
        for name in ("exhaustive", "optuna"):
            from omegaconf import OmegaConf

            cfg, _ = compose(study, [f"search={name}"])
            assert type(engine_from_config(OmegaConf.to_container(cfg.search))) is ENGINES[name]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"n_trail": 10}, "unknown setting 'n_trail'; did you mean 'n_trials'?"),
        ({"n_trials": 0}, "search.n_trials=0 is below 1"),
        ({"sampler": "cmaes"}, "search.sampler='cmaes' is not one of nsga2, nsga3, tpe, random"),
        ({"_target_": "dse.search.nowhere.Engine"}, "is not an importable class"),
        ({"_target_": "dse.search.space.Space"}, "is not a dse search engine"),
    ],
)
def test_a_bad_setting_is_one_line(change, message):
    settings = {**_search_config("optuna"), **change}
    with pytest.raises(ValueError) as caught:
        engine_from_config(settings)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_missing_setting_names_the_files_that_give_it():
    settings = _search_config("exhaustive")
    del settings["chunk"]
    with pytest.raises(ValueError, match="missing setting.*chunk for Exhaustive"):
        engine_from_config(settings)


def test_gradients_need_a_pareto_engine_underneath():
    settings = {**_search_config("gradient"), "base": _search_config("milp")}
    with pytest.raises(ValueError, match="give a Pareto engine"):
        engine_from_config(settings)


def test_an_engine_object_runs_as_its_config_does_and_is_recorded(tmp_path):
    """dse.search.run(engine=<object>) gives the tables the same settings give from the
    command line, and the run folder's config.yaml names the engine that ran."""
    by_name = run(overrides=SMALL_STUDY, engine="exhaustive", out_dir=tmp_path / "name")
    settings = {k: v for k, v in _search_config("exhaustive").items() if k != "_target_"}
    obj = Exhaustive(**{**settings, "chunk": 256})  # the chunk size never changes results
    by_object = run(overrides=SMALL_STUDY, engine=obj, out_dir=tmp_path / "object")
    for name in ("frontier.csv", "best.csv", "points.csv"):
        assert (tmp_path / "name" / name).read_bytes() == (tmp_path / "object" / name).read_bytes()
    recorded = yaml.safe_load((tmp_path / "object" / "config.yaml").read_text())["search"]
    assert recorded["_target_"] == "dse.search.exhaustive.Exhaustive" and recorded["chunk"] == 256
    assert by_object.summary["engine"] == by_name.summary["engine"] == "exhaustive"


def test_a_nested_engines_bad_setting_names_where_it_is():
    settings = _search_config("gradient")
    settings["base"] = {**settings["base"], "chunk": 0}
    with pytest.raises(ValueError, match=r"search\.base\.chunk=0 is below 1"):
        engine_from_config(settings)


@pytest.mark.parametrize(
    ("refine", "message"),
    [
        ({"objective": "tok_s_per_unitt", "steps": 3}, "search.refine.objective='tok_s_per_unitt'"),
        ({"top": 6, "objective": "tok_s_per_unit", "steps": 3}, "top is now search.top"),
        ("fast", "search.refine='fast': give {objective, steps} or null"),
    ],
)
def test_refine_settings_are_checked_before_the_search(refine, message):
    settings = {**_search_config("gradient"), "refine": refine}
    with pytest.raises(ValueError) as caught:
        engine_from_config(settings)
    assert message in str(caught.value)


def test_an_unknown_engine_name_is_one_line():
    with pytest.raises(ValueError, match="engine='exhaustiv': no conf/search/exhaustiv.yaml"):
        run(engine="exhaustiv")


def test_a_failing_gradient_stage_keeps_the_searchs_tables(tmp_path, monkeypatch):
    """Nothing computed is lost: the sweep's frontier is written before the gradient stage's
    error is raised."""
    import dse.search.gradients as gradients

    def broken(*args, **kwargs):
        raise RuntimeError("refinement failed")

    monkeypatch.setattr(gradients, "refine", broken)
    settings = {k: v for k, v in _search_config("exhaustive").items() if k != "_target_"}
    engine = Gradients(base=Exhaustive(**settings), top=2, sensitivities=False,
                       refine={"objective": "tok_s_per_unit", "steps": 2}, whatif=False)  # fmt: skip
    with pytest.raises(RuntimeError, match="refinement failed"):
        run(overrides=SMALL_STUDY, engine=engine, out_dir=tmp_path)
    for name in ("frontier.csv", "best.csv", "points.csv", "summary.json"):
        assert (tmp_path / name).is_file(), name


AHEAD_RAN: list[str] = []


@dataclasses.dataclass(frozen=True)
class AheadExhaustive(Exhaustive):
    """An exhaustive engine with ahead work: one job that records its thread, one that fails."""

    def ahead(self, problem):
        import threading

        def job():
            AHEAD_RAN.append(threading.current_thread().name)

        def broken():
            raise RuntimeError("never seen")

        return (job, broken)


def test_the_entry_point_runs_an_engines_ahead_work_in_the_background(tmp_path):
    """Engines start no threads: ``run_study`` runs what ``ahead`` returns beside the search, and
    a failing job changes nothing (the engine's own call would repeat and report it)."""
    import threading

    AHEAD_RAN.clear()
    settings = {k: v for k, v in _search_config("exhaustive").items() if k != "_target_"}
    plain = run(overrides=SMALL_STUDY, engine=Exhaustive(**settings), out_dir=tmp_path / "plain")
    ahead = run(
        overrides=SMALL_STUDY, engine=AheadExhaustive(**settings), out_dir=tmp_path / "ahead"
    )
    for thread in threading.enumerate():
        if thread.name == "dse-ahead":
            thread.join()
    assert AHEAD_RAN == ["dse-ahead"]
    assert (tmp_path / "plain" / "frontier.csv").read_bytes() == (
        tmp_path / "ahead" / "frontier.csv"
    ).read_bytes()
    assert ahead.summary["space_size"] == plain.summary["space_size"]
