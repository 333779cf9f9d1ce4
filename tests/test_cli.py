"""The ``dse`` command line, end to end in-process: ``dse.cli.main`` returns the exit code."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from dse.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "scenarios.csv"
ADDED = ["ttft_ms", "tpot_ms", "tok_s_user", "tok_s_gpu", "memory_gb", "feasible", "reason", "bound",
         "input_tok_s_gpu", "batch_used", "max_batch", "assumed"]  # fmt: skip


def test_predict_writes_the_output_csv(tmp_path, capsys):
    src = tmp_path / "in.csv"
    shutil.copy(EXAMPLES, src)
    dst = tmp_path / "sub" / "out.csv"
    assert main(["predict", str(src), "-o", str(dst)]) == 0
    assert dst.exists()
    inp, out = pd.read_csv(src), pd.read_csv(dst)
    assert len(out) == len(inp)
    assert list(out.columns[: len(inp.columns)]) == list(inp.columns)
    for col in ADDED:
        assert col in out.columns, col
    assert out["feasible"].sum() == len(inp) - 3  # the three rows the examples mark as bad
    stdout = capsys.readouterr().out
    assert "dse predict:" in stdout and str(dst) in stdout


def _one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err and "\n" not in err, err
    assert "Traceback" not in captured.err + captured.out
    return err


def test_missing_input_file_is_a_usage_error(tmp_path, capsys):
    rc = main(["predict", str(tmp_path / "nope.csv"), "-o", str(tmp_path / "out.csv")])
    assert rc == 2
    err = _one_line_error(capsys)
    assert "does not exist" in err and "nope.csv" in err
    assert not (tmp_path / "out.csv").exists()


def test_csv_without_model_column_is_a_usage_error(tmp_path, capsys):
    src = tmp_path / "in.csv"
    src.write_text("id,hardware,tp\nx,h100_sxm,1\n")
    rc = main(["predict", str(src), "-o", str(tmp_path / "out.csv")])
    assert rc == 2
    err = _one_line_error(capsys)
    assert "model" in err
    assert not (tmp_path / "out.csv").exists()


def test_empty_file_is_a_usage_error(tmp_path, capsys):
    src = tmp_path / "in.csv"
    src.write_text("")
    assert main(["predict", str(src), "-o", str(tmp_path / "out.csv")]) == 2
    _one_line_error(capsys)


def test_debug_shows_the_exception(tmp_path):
    with pytest.raises(Exception, match="does not exist"):
        main(["--debug", "predict", str(tmp_path / "nope.csv"), "-o", str(tmp_path / "out.csv")])


# ----- issue 19, dse predict's edges ------------------------------------------------------------
def _predict(tmp_path, text: str):
    src = tmp_path / "in.csv"
    src.write_text(text)
    dst = tmp_path / "out.csv"
    return main(["predict", str(src), "-o", str(dst)]), dst


@pytest.mark.parametrize(
    "cells, words",
    [
        # Items 1-2: values far beyond any deployment came back feasible with zero times.
        ("phase=decode,spec_k=1e308", ["spec_k=1e+308 is above 64"]),
        ("phase=serve,spec_k=1e30", ["spec_k=1e+30 is above 64"]),
        ("phase=serve,concurrency=1e308", ["concurrency=1e+308 is above 1e+08"]),
        # Item 3: counts of sequences and tokens are whole numbers.
        ("phase=serve,concurrency=2.5", ["concurrency=2.5 must be a whole number"]),
        ("phase=serve,isl=100.5", ["isl=100.5 must be a whole number"]),
        # Item 4: only an empty cell is blank; a literal nan is refused, not taken as blank.
        ("phase=decode,batch=nan", ["batch='nan' is not finite"]),
    ],
)
def test_predict_refuses_values_no_deployment_has(tmp_path, cells, words):
    import pandas as pd

    cols = dict(c.split("=") for c in cells.split(","))
    header = "id,model,hardware,tp," + ",".join(cols)
    rc, dst = _predict(tmp_path, f"{header}\nr1,llama3.1-8b,h100_sxm,1,{','.join(cols.values())}\n")
    assert rc == 0
    out = pd.read_csv(dst, keep_default_na=False)
    assert out["feasible"].astype(str).tolist() == ["False"]
    for w in words:
        assert w in out["reason"][0], out["reason"][0]


def test_predict_keeps_na_looking_ids_as_text(tmp_path):
    """Item 4: an id of nan, NA, null or None is text, never emptied."""
    import pandas as pd

    ids = ["nan", "NA", "null", "None"]
    rows = "".join(f"{i},llama3.1-8b,h100_sxm,1,decode,8\n" for i in ids)
    rc, dst = _predict(tmp_path, "id,model,hardware,tp,phase,batch\n" + rows)
    assert rc == 0
    out = pd.read_csv(dst, keep_default_na=False, dtype={"id": str})
    assert out["id"].tolist() == ids
    assert out["feasible"].astype(str).tolist() == ["True"] * 4


@pytest.mark.parametrize(
    "text, words",
    [
        # Item 5: header names are stripped before the required-column check ...
        (None, None),
        # ... and a duplicate that differs by a space is one clear error.
        (
            "id,model,hardware,tp,tp \nr1,llama3.1-8b,h100_sxm,1,2\n",
            ["'tp' appears more than once"],
        ),
        # Item 6: a row with extra fields must not shift the columns.
        (
            "id,model,hardware,tp\nr1,llama3.1-8b,h100_sxm,1,9\n",
            ["line 2 has 5 fields", "header has 4"],
        ),
        # Item 7: an input value and its measured_ twin cannot both be kept.
        (
            "id,model,hardware,tp,ttft_ms,measured_ttft_ms\nr1,llama3.1-8b,h100_sxm,1,5,6\n",
            ["both ttft_ms and measured_ttft_ms"],
        ),
    ],
)
def test_predict_table_shape_mistakes_are_one_line(tmp_path, capsys, text, words):
    import pandas as pd

    if text is None:  # spaces after the commas of the header are fine
        rc, dst = _predict(tmp_path, "id, model, hardware, tp\nr1,llama3.1-8b,h100_sxm,1\n")
        assert rc == 0
        assert list(pd.read_csv(dst).columns[:4]) == ["id", "model", "hardware", "tp"]
        return
    rc, dst = _predict(tmp_path, text)
    assert rc == 2
    err = _one_line_error(capsys)
    for w in words:
        assert w in err, err
    assert not dst.exists()


def test_stack_rows_need_no_hardware_column_and_refuse_absurd_counts(tmp_path):
    """Item 8: a table of stack rows (system + workload, no hardware column) was refused for
    the missing column; a stack row's batch=1e30 was answered as if blank."""
    import pandas as pd

    text = (
        "id,model,system,workload,batch\n"
        "s1,llama3.1-70b,gb200_nvl72,chat,8\n"
        "s2,llama3.1-70b,gb200_nvl72,chat,1e30\n"
    )
    rc, dst = _predict(tmp_path, text)
    assert rc == 0
    out = pd.read_csv(dst, keep_default_na=False)
    assert out["reason"][0] == "" or out["feasible"].astype(str)[0] == "True", out["reason"][0]
    assert float(out["tok_s_user"][0]) > 0
    assert out["feasible"].astype(str)[1] == "False"
    assert "batch=1e+30 is above 1e+08" in out["reason"][1]
