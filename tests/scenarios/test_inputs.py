"""Header and row handling that protects users from silent mistakes."""

import pandas as pd
import pytest

from dse.predict import predict_frame
from dse.scenarios.schema import check_columns


def test_header_whitespace_is_stripped(catalog):
    df = pd.DataFrame(
        {
            "model": ["llama3.1-8b"],
            "hardware": ["h100_sxm"],
            " isl ": [4096],
            "tp": [1],
            "concurrency": [4],
        }
    )
    out = predict_frame(df, catalog)
    assert "isl=1024" not in out["assumed"].iloc[0]
    assert bool(out["feasible"].iloc[0])


def test_duplicate_schema_column_is_an_error_and_near_miss_a_warning():
    errors, warnings = check_columns(["model", "hardware", "tp", "tp.1", "concurency", "my_note"])
    assert errors == ["column 'tp' appears more than once; keep one"]
    assert len(warnings) == 1 and "did you mean 'concurrency'" in warnings[0]


def test_queue_beyond_capacity_and_ignored_pools_are_stated(catalog):
    df = pd.DataFrame(
        {
            "id": ["q", "p"],
            "model": ["llama3.1-8b", "llama3.1-8b"],
            "hardware": ["h100_sxm", "h100_sxm"],
            "tp": [1, 1],
            "isl": [8192, 1000],
            "concurrency": [100000, 4],
            "prefill_gpus": [None, 4],
            "decode_gpus": [None, 4],
        }
    )
    out = predict_frame(df, catalog)
    assert "requests queue" in out["assumed"].iloc[0]
    assert "ignored" in out["assumed"].iloc[1]


@pytest.mark.parametrize(
    "row, message",
    [
        (
            dict(tp=8, mode="disagg", phase="serve", prefill_gpus=8, decode_gpus=20),
            "not a multiple of one decode worker",
        ),
        (dict(tp=1, weight_dtype="bf16", model="llama3.1-405b"), "row 2 (id r): decode/attention weights"),
    ],
)
def test_reasons_name_the_row(catalog, row, message):
    base = dict(id="r", model="llama3.1-70b", hardware="h100_sxm", isl=1000, osl=100, concurrency=8)
    out = predict_frame(pd.DataFrame([{**base, **row}]), catalog)
    assert not bool(out["feasible"].iloc[0])
    assert message in out["reason"].iloc[0]
