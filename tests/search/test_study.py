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


def test_p99_constraints_are_honoured_by_the_engines(stack, evaluator):
    """An SLA on a percentile (``tpot_ms_p99: {max: X}``, as MLPerf states them) keeps every
    front point of the exhaustive and the Optuna engine under it, and binds: the
    unconstrained front has points above it."""
    from dse.search.exhaustive import exhaustive_search

    space = evaluator.space
    every = evaluator.evaluate(evaluator.decode(np.arange(space.size)))
    ok = np.asarray(every["feasible"]) > 0.5
    bound = float(np.quantile(np.asarray(every["tpot_ms_p99"])[ok], 0.5))
    sla = parse_constraints({"tpot_ms_p99": {"max": bound}})
    model = "llama3.1-70b"
    swept = exhaustive_search(stack, model, space, OBJ, sla, evaluator=evaluator, keep_points=True)
    sampled, _ = optuna_search(evaluator, OBJ, sla, n_trials=128, batch=64, population=64, seed=1)
    for result in (swept, sampled):
        table = result.front_table
        assert len(table) and (table["tpot_ms_p99"] <= bound * (1 + 1e-9)).all()
    free = exhaustive_search(stack, model, space, OBJ, (), evaluator=evaluator, keep_points=True)
    assert (free.front_table["tpot_ms_p99"] > bound).any()


CURVE = ["study=rubin_blackwell_curve", "space.choices.tp=[4]", "space.choices.ep=[16]",
         "space.choices.dp=[4]", "space.choices.batch=[8,64,256]", "space.choices.prefill_units=[32]",
         "space.choices.decode_units=[32]", "space.choices.spec_k=[3]", "sessions=8"]  # fmt: skip


def test_cli_runs_the_rubin_blackwell_curve_study_with_its_cost_advantage(tmp_path, capsys):
    import pandas as pd

    from dse.cli import main

    assert main(["search", *CURVE, f"results_dir={tmp_path}", "run=c", "--quiet"]) == 0
    run = tmp_path / "rubin_blackwell_curve" / "c"
    table = pd.read_csv(run / "figures" / "cost_ratio.csv")
    assert set(table["system"]) == {"gb200_nvl72", "gb300_nvl72", "vr200_nvl72"}
    reached = table[table["reference_reaches"]]
    # The reference's own advantage is at most 1 (it is the cheapest reference or dearer).
    refs = reached[reached["system"].isin(["gb200_nvl72", "gb300_nvl72"])]["advantage"].dropna()
    assert len(refs) and (refs <= 1 + 1e-9).all()
    assert reached.loc[reached["system"] == "vr200_nvl72", "advantage"].notna().any()
    md = (run / "report.md").read_text()
    assert "Cost advantage across interactivity" in md and "figures/cost_ratio.png" in md
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["search", *CURVE, f"results_dir={tmp_path}", "report.ratio_to=[gb100_nvl72]"])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and "report.ratio_to" in err[0]
