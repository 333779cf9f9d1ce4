"""`dse stack` grids and stack rows in `dse predict`: end to end on small cases."""

import pandas as pd
import pytest

from dse.cli import main
from dse.predict.frame import predict_frame
from dse.stack.config import load_group
from dse.stack.grid import load_grid, run_grid


def test_grid_constraints_and_best_per_system(tmp_path):
    grid = {
        "model": "llama3.1-70b",
        "workload": "agentic_coding",
        "systems": {"vr200_nvl72": {}, "gb200_nvl72": {"batch": [1]}},
        "software": ["default"],
        "sweep": {"batch": [1, 8, 64], "prefill_units": [8, 16]},
        "constraints": {"min_tok_s_user": 100},
    }
    points, best = run_grid(grid)
    assert len(points) == 2 * 3 + 1 * 2  # per-system sweep entries override the global ones
    ok = points["meets_constraints"]
    assert (points.loc[ok, "tok_s_user"] >= 100).all() and points.loc[ok, "feasible"].all()
    assert list(best["system"]) == ["vr200_nvl72", "gb200_nvl72"]
    for _, row in best.iterrows():
        part = points[(points.system == row.system) & points.meets_constraints]
        if len(part):
            assert row.usd_per_mtok == pytest.approx(part.usd_per_mtok.min())


def test_grid_file_errors_are_one_line(tmp_path):
    bad = tmp_path / "g.yaml"
    bad.write_text("model: kimi-k2\nsystems: [vr200_nvl72]\nconstraint: {}\n")
    with pytest.raises(ValueError, match="unknown key"):
        load_grid(bad)
    assert main(["stack", str(bad)]) == 2
    with pytest.raises(ValueError, match="did you mean 'vr200_nvl72'"):
        load_group("system", "vr200_nvl27")


def test_predict_mixes_instance_and_stack_rows():
    df = pd.DataFrame(
        [
            dict(
                id="inst",
                model="llama3.1-8b",
                hardware="h100_sxm",
                tp=1,
                phase="decode",
                batch=4,
                isl=1024,
                osl=128,
            ),
            dict(id="stack", model="llama3.1-70b", workload="chat", system="vr200_nvl72", batch=8),
            dict(id="typo", model="llama3.1-70b", workload="chat", system="vr200_nvl27"),
        ]
    )
    out = predict_frame(df)
    assert out["feasible"].tolist() == [True, True, False]
    assert pd.isna(out.loc[0, "hit_rate"]) and 0 < out.loc[1, "hit_rate"] < 1
    assert out.loc[1, "usd_per_mtok"] > 0 and out.loc[1, "tok_s_user"] > 0
    assert "row 4" in out.loc[2, "reason"] and "did you mean" in out.loc[2, "reason"]
    assert "software=default" in out.loc[1, "assumed"]
