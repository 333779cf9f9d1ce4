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
        (
            dict(tp=1, weight_dtype="bf16", model="llama3.1-405b"),
            "row 2 (id r): decode/attention weights",
        ),
    ],
)
def test_reasons_name_the_row(catalog, row, message):
    base = dict(id="r", model="llama3.1-70b", hardware="h100_sxm", isl=1000, osl=100, concurrency=8)
    out = predict_frame(pd.DataFrame([{**base, **row}]), catalog)
    assert not bool(out["feasible"].iloc[0])
    assert message in out["reason"].iloc[0]


def _dsr1_rows(**extra):
    base = dict(model="deepseek-r1", hardware="b200", tp=1, dp=8, ep=8, weight_dtype="fp4",
                kv_dtype="fp8", isl=804, osl=3736, harness="in_process", framework="trtllm")  # fmt: skip
    return pd.DataFrame([dict(base, id="fixed"), dict(base, id="dataset", **extra)])


def test_a_dataset_row_holds_fewer_and_longer_sequences(catalog):
    """MLPerf DeepSeek-R1 offline on 8 B200 (DEP8): the set's long output tail doubles the
    context each running sequence holds, so half as many fit and throughput falls; the row
    says which spread it used."""
    out = predict_frame(_dsr1_rows(dataset="mlperf-deepseek-r1"), catalog)
    assert out["feasible"].all()
    fixed, spread = out.iloc[0], out.iloc[1]
    assert spread["batch_used"] < 0.6 * fixed["batch_used"]
    assert spread["tok_s_gpu"] < 0.85 * fixed["tok_s_gpu"]
    assert "length spread of dataset mlperf-deepseek-r1 (cv in 0.50, out 1.25" in spread["assumed"]
    assert "dataset" not in fixed["assumed"]
    # Percentile columns come with every serving row, ordered around the mean.
    for row in (fixed, spread):
        assert row["ttft_ms_p50"] <= row["ttft_ms"] <= row["ttft_ms_p99"]
        assert row["tpot_ms_p50"] <= row["tpot_ms_p90"] <= row["tpot_ms_p99"]


def test_a_dataset_fills_blank_lengths_and_explicit_cells_win(catalog):
    df = _dsr1_rows(dataset="mlperf-deepseek-r1", osl_cv=0.0, isl=None, osl=None)
    out = predict_frame(df.iloc[[1]], catalog)
    notes = out["assumed"].iloc[0]
    assert "isl=803.8 (mean of dataset mlperf-deepseek-r1)" in notes
    assert "osl=4043.4 (mean of dataset mlperf-deepseek-r1)" in notes
    assert "out 0.00" in notes  # the row's osl_cv=0 beats the dataset's 1.25


@pytest.mark.parametrize(
    "extra, message",
    [
        (dict(dataset="mlperf-deepsek-r1"), "did you mean 'mlperf-deepseek-r1'"),
        (dict(length_corr=1.5), "column length_corr=1.5 is above 1"),
        (dict(osl_cv=-1), "column osl_cv=-1 is below 0"),
    ],
)
def test_bad_length_spreads_are_one_line_reasons(catalog, extra, message):
    out = predict_frame(_dsr1_rows(**extra).iloc[[1]], catalog)
    assert not bool(out["feasible"].iloc[0])
    assert message in out["reason"].iloc[0] and "\n" not in out["reason"].iloc[0]
