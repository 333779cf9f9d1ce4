"""Spaces, Optuna (batched, constrained, resumable), studies from Python and the CLI, the sweeper."""

import json

import numpy as np
import pytest

from dse.search.evaluate import Evaluator
from dse.search.objectives import meets, parse_constraints, parse_objectives
from dse.search.optuna_search import optuna_search
from dse.search.space import Space
from dse.stack import Stack
from tests.support import SMALL_STUDY

SPACE = {
    "choices": {"software": ["default", "nvfp4_mtp"], "batch": [1, 4, 16, 64],
                "prefill_units": [8, 16]},
    "systems": {"gb200_nvl72": {}, "vr200_nvl72": {"tp": [4, 8], "host": ["vera", "x86_pcie6"]}},
    "continuous": {"hbm_bw_scale": {"low": 0.5, "high": 2.0, "steps": 2}},
}  # fmt: skip
OBJ = parse_objectives(["max:tok_s_user", "max:tok_s_per_unit"])
CON = parse_constraints({"ttft_ms": {"max": 3000}})
SMALL = SMALL_STUDY


@pytest.fixture(scope="module")
def stack():
    return Stack(workload="agentic_coding", sessions=16)


@pytest.fixture(scope="module")
def evaluator(stack):
    return Evaluator(stack, "llama3.1-70b", Space.from_mapping(SPACE), chunk=256)


def test_space_is_a_union_of_per_system_products():
    space = Space.from_mapping(SPACE)
    gb, vr = space.products
    assert gb.size == 2 * 4 * 2 * 2 and vr.size == gb.size * 4
    assert space.size == gb.size + vr.size
    last = space.point(space.size - 1)
    assert last["system"] == "vr200_nvl72" and last["hbm_bw_scale"] == 2.0
    assert "tp" not in space.point(0)


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"choices": {"batch": [1]}}, "name the system"),
        ({"choices": {"system": ["a"], "batch": [1, 1]}}, "twice"),
        ({"choices": {"system": ["a"]}, "continuous": {"x": {"low": 2, "high": 1}}}, "low <= high"),
        ({"choices": {"system": ["a"]}, "bogus": {}}, "unknown key"),
    ],
)
def test_bad_spaces_say_what_is_wrong(bad, match):
    with pytest.raises(ValueError, match=match):
        Space.from_mapping(bad)


def test_evaluator_rejects_unknown_names(stack):
    space = Space.from_mapping({"choices": {"system": ["gb200_nvl72"], "decode_hw": ["gb201"]}})
    with pytest.raises(ValueError, match="decode_hw: 'gb201' is not one of"):
        Evaluator(stack, "llama3.1-70b", space)


def test_evaluator_decodes_points_as_the_named_api_does(stack, evaluator):
    space = evaluator.space
    ids = np.array([0, 7, space.size - 1])
    cols = evaluator.decode(ids)
    got = evaluator.evaluate(cols)["tok_s_user"]
    rows = []
    for i in ids:
        p = space.point(int(i))
        if "host" in p:
            p["host"] = stack.host_index[p["host"]]
        rows.append(dict(model="llama3.1-70b", **p))
    want = stack.evaluate(rows)["tok_s_user"].to_numpy()
    np.testing.assert_allclose(got, want, rtol=1e-9)


def test_optuna_front_is_feasible_and_resume_gives_the_same_front(evaluator, tmp_path):
    journal = str(tmp_path / "study.journal")
    kw = dict(batch=64, population=64, seed=3, storage=journal, study_name="t")
    first, study = optuna_search(evaluator, OBJ, CON, n_trials=192, **kw)
    assert first.evaluated == 192 and len(first.front.ids) > 0
    table = first.front_table
    assert table["feasible"].all() and (table["ttft_ms"] <= 3000).all()
    # per trial, the constraint values Optuna holds agree with the re-evaluated table
    t = study.trials[int(table["trial"].iloc[0])]
    held = {k: v for k, v in t.system_attrs.items() if k.startswith("constraints:")}
    assert set(held) == {"constraints:feasible", "constraints:ttft_ms"}
    assert max(held.values()) <= 0
    # "interrupted" here: a new call on the same storage loads the study, adds nothing
    again, _ = optuna_search(evaluator, OBJ, CON, n_trials=192, **kw)
    assert again.evaluated == 192
    assert sorted(again.front.ids) == sorted(first.front.ids)
    np.testing.assert_allclose(np.sort(again.front.values, 0), np.sort(first.front.values, 0))
    # and resuming to more trials continues the same study
    more, _ = optuna_search(evaluator, OBJ, CON, n_trials=256, **kw)
    assert more.evaluated == 256


def test_study_from_python_writes_every_table(tmp_path):
    from dse.search import run

    out = run(overrides=SMALL, out_dir=tmp_path / "run")
    files = set(json.loads((tmp_path / "run" / "summary.json").read_text())["files"])
    for name in ("points", "frontier", "best"):
        assert {f"{name}.parquet", f"{name}.csv"} <= files
        assert (tmp_path / "run" / f"{name}.parquet").exists()
    assert (tmp_path / "run" / "config.yaml").exists()
    s = out.summary
    assert s["evaluated"] == s["space_size"] == len(out.points)
    assert (out.frontier["tok_s_user"] >= 100).all()  # the study's constraint
    assert meets({c: out.frontier[c] for c in out.frontier}, parse_constraints(
        {"tok_s_user": {"min": 100}})).all()  # fmt: skip
    assert out.best["why"].str.len().gt(10).all()


def test_cli_search_runs_and_rejects_bad_input_in_one_line(tmp_path, capsys):
    from dse.cli import main

    rc = main(["search", *SMALL, f"results_dir={tmp_path}", "run=r1"])
    assert rc == 0
    assert (tmp_path / "kv_tier_sizing" / "r1" / "frontier.csv").exists()
    capsys.readouterr()  # the good run's progress lines (stderr) and summary
    with pytest.raises(SystemExit) as e:
        main(["search", *SMALL, f"results_dir={tmp_path}", "objectives=[max:tok_per_user]"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown metric 'tok_per_user'" in err[0]


def test_dse_sweeper_turns_sweeps_into_one_batched_optuna_study(tmp_path):
    from dse.cli import main

    rc = main([
        "search", "-m", "hydra/sweeper=dse", *SMALL, f"results_dir={tmp_path}", "run=sw",
        "batch=choice(8,16,32)", "hbm_bw_scale=interval(0.8,1.5)",
        "hydra.sweeper.n_trials=48", "hydra.sweeper.batch=24", "hydra.sweeper.population=24",
    ])  # fmt: skip
    assert rc == 0
    (summary,) = list((tmp_path / "kv_tier_sizing" / "multirun-sw").rglob("summary.json"))
    s = json.loads(summary.read_text())
    assert s["engine"] == "optuna" and s["evaluated"] == 48
    points = summary.parent / "points.csv"
    import pandas as pd

    df = pd.read_csv(points)
    assert set(df["batch"]) <= {8, 16, 32}
    assert df["hbm_bw_scale"].between(0.8, 1.5).all() and df["hbm_bw_scale"].nunique() > 3


def test_cli_json_and_quiet_modes_keep_stdout_for_scripts(tmp_path, capsys):
    from dse.cli import main

    args = ["search", *SMALL, f"results_dir={tmp_path}", "report.enabled=false"]
    assert main([*args, "run=j", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)  # the whole of stdout is one JSON document
    assert doc["evaluated"] == doc["space_size"] and doc["best"] and doc["report"] is None
    assert doc["out_dir"].endswith("j")
    assert main([*args, "run=q", "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    with pytest.raises(SystemExit) as e:
        main([*args, "ui.output=yaml"])
    assert e.value.code == 2 and "ui.output='yaml'" in capsys.readouterr().err


def test_multirun_ends_with_a_report_comparing_its_runs(tmp_path):
    from dse.cli import main

    rc = main(["search", "-m", *SMALL, f"results_dir={tmp_path}", "run=m", "sessions=8,16"])
    assert rc == 0
    sweep = tmp_path / "kv_tier_sizing" / "multirun-m"
    for job in ("job0", "job1"):
        assert (sweep / job / "report.html").is_file()
    md = (sweep / "report.md").read_text()
    assert "sessions=8" in md and "sessions=16" in md
    assert "(job0/report.html)" in md and (sweep / "figures" / "sweep_frontiers.png").is_file()


@pytest.mark.parametrize("engine", [[], ["search=optuna", "search.n_trials=96", "search.batch=32",
                                         "search.population=32", "search.seed=7"]])  # fmt: skip
def test_same_seed_and_config_give_byte_identical_tables(tmp_path, engine):
    from dse.search import run

    runs = []
    for k in range(2):
        out = tmp_path / f"run{k}"
        run(overrides=[*SMALL, *engine, "report.enabled=false"], out_dir=out)
        runs.append(
            {p.name: p.read_bytes() for p in out.glob("*") if p.suffix in (".csv", ".parquet")}
        )
    assert {"frontier.parquet", "frontier.csv", "best.csv", "points.parquet"} <= set(runs[0])
    assert runs[0] == runs[1]


def test_readme_constraint_example_adds_to_the_study_constraints(tmp_path, capsys):
    """Issue 19 item 9: the README's `'constraints={ttft_ms: {max: 1500}}'` (a metric the study
    does not name) merges into the study's constraints instead of failing in Hydra."""
    import json

    from dse.cli import main

    rc = main(["search", *SMALL, f"results_dir={tmp_path}", "run=c1", "report.enabled=false",
               "constraints={ttft_ms: {max: 1500}}", "cost.electricity_usd_per_kwh=0.12"])  # fmt: skip
    assert rc == 0
    summary = json.loads((tmp_path / "kv_tier_sizing" / "c1" / "summary.json").read_text())
    bounds = {c["metric"]: (c["low"], c["high"]) for c in summary["constraints"]}
    assert bounds == {"tok_s_user": (100.0, None), "ttft_ms": (None, 1500.0)}
    capsys.readouterr()


@pytest.mark.parametrize(
    "arg, words",
    [
        # Issue 19 item 10: a scalar where a {min, max} mapping belongs was a TypeError traceback.
        ("+constraints.ttft_ms=5", ["constraints.ttft_ms=5", "+constraints.ttft_ms.max=5"]),
        # Item 13: a bad best_where value was reported as constraints...; rank_by as
        # objectives[0]; a bare objective string was read letter by letter ("got 't'").
        ("+best_where.ttft_ms=5", ["best_where.ttft_ms=5", "+best_where.ttft_ms.max=5"]),
        ("rank_by=min:nope", ["rank_by: unknown metric 'nope'"]),
        ("objectives=tok_s_user", ["objectives[0]", "'max:METRIC'", "got 'tok_s_user'"]),
    ],
)
def test_setting_mistakes_are_one_line_naming_their_key(tmp_path, capsys, arg, words):
    from dse.cli import main

    with pytest.raises(SystemExit) as e:
        main(["search", *SMALL, f"results_dir={tmp_path}", arg])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    for w in words:
        assert w in err[0], err[0]
    # Issue 19 item 14: a refused run leaves no run folder behind.
    assert not any(tmp_path.iterdir()), sorted(p.name for p in tmp_path.rglob("*"))


def test_bad_progress_mode_is_one_line(tmp_path, capsys):
    """Issue 19 item 12 (second half): ui.progress=foo was accepted."""
    from dse.cli import main

    with pytest.raises(SystemExit) as e:
        main(["search", *SMALL, f"results_dir={tmp_path}", "ui.progress=foo", "--json"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ui.progress='foo'" in err[0]
    assert not any(tmp_path.iterdir())  # item 14: no run folder left behind


def test_a_refused_run_keeps_an_earlier_runs_results(tmp_path, capsys):
    """Item 14's limit: a mistake under the name of a finished run removes nothing of it."""
    from dse.cli import main

    args = ["search", *SMALL, f"results_dir={tmp_path}", "run=kept", "report.enabled=false"]
    assert main(args) == 0
    with pytest.raises(SystemExit):
        main([*args, "rank_by=min:nope"])
    assert (tmp_path / "kv_tier_sizing" / "kept" / "frontier.csv").is_file()
    capsys.readouterr()


def test_stdout_has_only_dse_lines_on_a_first_run_of_matplotlib(tmp_path):
    """Issue 19 item 17: with an empty matplotlib cache (a first run), matplotlib's
    "generated new fontManager" INFO line went to stdout through Hydra's logging handler,
    between dse's own lines (text output; --json keeps stdout for the document alone)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, MPLCONFIGDIR=str(tmp_path / "mpl"))
    cmd = [sys.executable, "-m", "dse.cli", "search", *SMALL, f"results_dir={tmp_path}",
           "run=first"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "mpl").is_dir()  # matplotlib did build its font cache in this run
    assert "matplotlib" not in done.stdout and "fontManager" not in done.stdout
    assert "written to" in done.stdout  # dse's own summary is there


def test_fixed_traffic_takes_a_dataset_and_refuses_unknown_keys():
    from dse.search.study import traffic_profile

    named = traffic_profile({"dataset": "mlperf-deepseek-r1"})
    assert float(named.input_tokens) == 803.8 and float(named.output_tokens) == 4043.4
    assert float(named.decode_context) == pytest.approx(5826.0, abs=1.0)
    given = traffic_profile({"dataset": "mlperf-deepseek-r1", "osl": 2000, "osl_cv": 0})
    assert float(given.decode_context) == pytest.approx(803.8 * 1.0 + 1000.0)  # rho*cv_o = 0
    plain = traffic_profile({"isl": 4000, "osl": 500})
    assert float(plain.decode_context) == 4250.0
    with pytest.raises(
        ValueError, match=r"traffic.osl_vc is not a traffic setting; did you mean 'osl_cv'"
    ):
        traffic_profile({"isl": 4000, "osl": 500, "osl_vc": 1})
    with pytest.raises(ValueError, match=r"traffic.isl is missing"):
        traffic_profile({"osl": 500})


@pytest.mark.parametrize("engine", [[], ["search=optuna", "search.n_trials=64", "search.batch=32", "search.population=32"]],
                         ids=["exhaustive", "optuna"])  # fmt: skip
def test_p99_constraints_are_honoured_by_the_engines(tmp_path, engine):
    """An SLA on a percentile (``tpot_ms_p99: {max: X}``, as MLPerf states them) keeps every
    frontier and best row under it, and binds: it removes designs the plain study kept."""
    from dse.search import run

    free = run(overrides=[*SMALL, *engine, "report.enabled=false"], out_dir=tmp_path / "free")
    p99 = free.points["tpot_ms_p99"][free.points["feasible"] > 0.5]
    bound = float(np.quantile(p99, 0.5))
    sla = run(overrides=[*SMALL, *engine, "report.enabled=false",
                         f"+constraints.tpot_ms_p99.max={bound}"],
              out_dir=tmp_path / "sla")  # fmt: skip
    for table in (sla.frontier, sla.best):
        assert len(table) and (table["tpot_ms_p99"] <= bound * (1 + 1e-9)).all()
    assert (free.frontier["tpot_ms_p99"] > bound).any()
