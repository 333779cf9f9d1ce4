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
