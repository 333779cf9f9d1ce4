"""``dse.predict.predict_frame``: a table of scenarios in, the same rows with predictions out.

Bad rows never stop the batch: they come back infeasible with a one-line reason naming the
row, while the good rows of the same table get numbers.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dse.predict import predict_frame
from dse.scenarios.schema import EXTRA_OUTPUT_COLUMNS, OUTPUT_COLUMNS

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "scenarios.csv"
PREDICTED = ["ttft_ms", "tpot_ms", "tok_s_user", "tok_s_gpu", "memory_gb"]

# Rows appended to the shipped examples (same models/accelerators among the valid rows, so the
# batched model is compiled once for both tables). `team` is an unknown column; `ttft_ms` a
# measured one.
EXTRA_CSV = """\
id,model,hardware,gpus,tp,pp,ep,dp,weight_dtype,kv_dtype,phase,mode,batch,concurrency,isl,osl,prefix,team,ttft_ms,kvp
good-prefill,llama3.1-8b,h100_sxm,1,1,1,1,1,bf16,bf16,prefill,agg,4,,2000,,,red,123.5
good-decode,llama3.1-8b,h100_sxm,1,1,1,1,1,bf16,bf16,decode,agg,8,,2000,500,,blue,
good-serve,llama3.1-70b,h100_sxm,4,4,1,1,1,fp8,fp8,serve,agg,,16,2000,500,,green,250
typo-model,deepsek-r1,b200,8,8,1,1,1,fp8,fp8,serve,agg,,16,1000,100,,red,
tp-heads,llama3.1-70b,h100_sxm,3,3,1,1,1,bf16,,serve,agg,,1,1000,100,,red,
gpus-mismatch,llama3.1-70b,h100_sxm,8,4,1,1,1,fp8,,serve,agg,,1,1000,100,,red,
ep-too-big,deepseek-r1,b200,512,1,1,512,512,fp4,fp8,serve,agg,,1,1000,100,,red,
batch-text,llama3.1-8b,h100_sxm,1,1,1,1,1,bf16,,decode,agg,lots,,1000,100,,red,
prefix-too-long,llama3.1-8b,h100_sxm,1,1,1,1,1,bf16,,prefill,agg,1,,1000,1,1000,red,
kvp-tp,llama3.1-70b,h100_sxm,4,4,1,1,1,fp8,fp8,serve,agg,,16,2000,500,,red,,3
"""

BAD = {
    "typo-model": "did you mean",
    "tp-heads": "does not divide",
    "gpus-mismatch": "gpus=8 but tp*pp*dp=4",
    "ep-too-big": "exceeds the model's 256 experts",
    "batch-text": "is not a number",
    "prefix-too-long": "must be below isl",
    "kvp-tp": "kvp=3 does not divide tp=4",
}


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    examples = pd.read_csv(EXAMPLES)
    extra = pd.read_csv(io.StringIO(EXTRA_CSV))
    return pd.concat([examples, extra], ignore_index=True)


@pytest.fixture(scope="module")
def predicted(table) -> pd.DataFrame:
    return predict_frame(table)


def _row(df: pd.DataFrame, rid: str) -> pd.Series:
    hits = df[df["id"] == rid]
    assert len(hits) == 1, rid
    return hits.iloc[0]


def test_rows_and_input_columns_are_kept(table, predicted):
    assert len(predicted) == len(table)
    assert list(predicted["id"]) == list(table["id"])
    # unknown columns are carried through untouched
    pd.testing.assert_series_equal(predicted["team"], table["team"])
    pd.testing.assert_series_equal(predicted["note"], table["note"])
    for col in OUTPUT_COLUMNS + EXTRA_OUTPUT_COLUMNS:
        assert col in predicted.columns, col


def test_measured_columns_are_renamed_not_overwritten(table, predicted):
    assert "measured_ttft_ms" in predicted.columns
    np.testing.assert_array_equal(
        predicted["measured_ttft_ms"].to_numpy(), table["ttft_ms"].to_numpy()
    )
    # the prediction is a new column with model numbers, not the measurement
    good = _row(predicted, "good-prefill")
    assert good["measured_ttft_ms"] == 123.5
    assert np.isfinite(good["ttft_ms"]) and good["ttft_ms"] != 123.5


def test_bad_rows_are_reported_and_good_rows_still_predicted(table, predicted):
    for i, rid in enumerate(table["id"]):
        if rid not in BAD:
            continue
        r = predicted.iloc[i]
        assert not bool(r["feasible"]), rid
        reason = r["reason"]
        assert reason.startswith(f"row {i + 2} (id {rid}): "), reason  # names the CSV line
        assert BAD[rid] in reason, reason
        assert "\n" not in reason
        assert all(np.isnan(r[c]) for c in PREDICTED if c != "memory_gb"), rid
    for rid in ("good-prefill", "good-decode", "good-serve"):
        r = _row(predicted, rid)
        assert bool(r["feasible"]), (rid, r["reason"])
        assert r["reason"] == ""
        assert r["bound"] in ("compute", "memory", "network", "overhead", "prefill_pool")


def test_phase_decides_which_latencies_are_reported(predicted):
    pre = _row(predicted, "good-prefill")
    assert np.isfinite(pre["ttft_ms"]) and pre["ttft_ms"] > 0
    assert np.isnan(pre["tpot_ms"]) and np.isnan(pre["tok_s_gpu"])
    assert pre["input_tok_s_gpu"] > 0
    dec = _row(predicted, "good-decode")
    assert np.isnan(dec["ttft_ms"])
    assert np.isfinite(dec["tpot_ms"]) and dec["tpot_ms"] > 0
    assert dec["tok_s_gpu"] == pytest.approx(8 * 1e3 / dec["tpot_ms"], rel=1e-9)
    assert dec["tok_s_user"] == pytest.approx(1e3 / dec["tpot_ms"], rel=1e-9)
    srv = _row(predicted, "good-serve")
    assert all(np.isfinite(srv[c]) and srv[c] > 0 for c in PREDICTED)


def test_defaults_are_stated(predicted):
    # blank concurrency → saturating; blank kv_dtype with FP8 weights → FP8 KV; both stated
    assert "saturating" in _row(predicted, "llama70b-h200-tp2-offline")["assumed"]
    assert "kv_dtype=fp8" in _row(predicted, "llama70b-h200-tp2-offline")["assumed"]


def test_shipped_examples_predict(predicted, table):
    examples = pd.read_csv(EXAMPLES)
    out = predict_frame(examples)  # the shipped file alone, no exception
    assert len(out) == len(examples)
    by_id = out.set_index("id")
    assert (
        not by_id.loc["bad-name", "feasible"] and "did you mean" in by_id.loc["bad-name", "reason"]
    )
    assert not by_id.loc["bad-layout", "feasible"] and by_id.loc["bad-layout", "reason"].startswith(
        "row 12 (id bad-layout): "
    )
    assert not by_id.loc["too-big", "feasible"] and "weights" in by_id.loc["too-big", "reason"]
    good = out[~out["id"].isin(["bad-name", "bad-layout", "too-big"])]
    assert good["feasible"].all(), good.loc[~good["feasible"], ["id", "reason"]].to_string()
    numeric = out[PREDICTED + ["input_tok_s_gpu", "batch_used", "max_batch"]].to_numpy(dtype=float)
    assert not np.isinf(numeric).any()
    # the same rows give the same numbers inside a bigger table
    merged = predicted.iloc[: len(examples)]
    pd.testing.assert_frame_equal(
        merged[PREDICTED + ["feasible", "reason", "bound"]].reset_index(drop=True),
        out[PREDICTED + ["feasible", "reason", "bound"]].reset_index(drop=True),
        rtol=1e-9,
    )
