"""Property test (issue 19): fuzzed ``dse predict`` cells never come back as nonsense.

Cells are drawn from what an adversarial user writes: numbers at and beyond float64's limits,
negative, zero and fractional counts, pandas' NA strings, unknown choices. Whatever comes in,
every row and its id come out (in order, ids as written), and a row marked feasible has finite
metrics and positive times for its phase."""

from __future__ import annotations

import math

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dse.cli import main

NUMBERS = ["", "nan", "NA", "null", "None", "inf", "-inf", "1e308", "1.7976931348623157e308",
           "1e30", "5e-324", "-1", "0", "2.5", "1", "2", "8", "1024"]  # fmt: skip
COUNTS = ("tp", "pp", "dp", "ep", "batch", "concurrency", "isl", "osl", "prefix", "spec_k",
          "spec_tokens_per_step", "gpus", "prefill_gpus", "decode_gpus")  # fmt: skip
IDS = ["nan", "NA", "null", "None", "", "x,y", "r"]


VALID = {"tp": ["1", "2"], "batch": ["1", "8", ""], "concurrency": ["1", "16", ""],
         "isl": ["128", "1024", ""], "osl": ["16", "256", ""]}  # fmt: skip


@st.composite
def tables(draw):
    """A clean row first (the table always has something feasible), then rows with one to
    three adversarial cells on top of valid ones."""
    rows = []
    for i in range(draw(st.integers(1, 12))):
        row = {
            "id": draw(st.sampled_from(IDS)) + str(i),
            "model": "llama3.1-8b" if i == 0 else draw(st.sampled_from(["llama3.1-8b", "nope"])),
            "hardware": "h100_sxm" if i == 0 else draw(st.sampled_from(["h100_sxm", "b200", "NA"])),
            "phase": draw(st.sampled_from(["", "prefill", "decode", "serve"])),
            "mode": "" if i == 0 else draw(st.sampled_from(["", "agg", "disagg"])),
        }
        for c in COUNTS:
            row[c] = draw(st.sampled_from(VALID[c])) if c in VALID else ""
        if i:
            for c in draw(st.lists(st.sampled_from(COUNTS), min_size=1, max_size=3)):
                row[c] = draw(st.sampled_from(NUMBERS))
        rows.append(row)
    return pd.DataFrame(rows)


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(df=tables())
def test_fuzzed_cells_never_give_a_feasible_row_with_nonsense(tmp_path, df):
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    df.to_csv(src, index=False)  # quotes the ids with commas
    assert main(["predict", str(src), "-o", str(dst)]) == 0
    out = pd.read_csv(dst, keep_default_na=False, dtype={"id": str})
    assert out["id"].tolist() == df["id"].tolist()  # no row lost, no id changed
    assert str(out["feasible"][0]) == "True", out.iloc[0].to_dict()  # the clean row
    for _, r in out.iterrows():
        if str(r["feasible"]) != "True":
            assert str(r["reason"]).strip(), r.to_dict()  # every refused row says why
            continue
        # A metric a phase does not have is blank (prefill: no TPOT); the others are numbers.
        metrics = [r[c] for c in ("ttft_ms", "tpot_ms", "tok_s_user", "tok_s_gpu", "memory_gb")]
        given = [float(x) for x in metrics if str(x) != ""]
        assert all(math.isfinite(x) and x >= 0 for x in given), r.to_dict()
        phase = (r["phase"] or "serve") if isinstance(r["phase"], str) else "serve"
        if phase in ("prefill", "serve"):
            assert float(r["ttft_ms"]) > 0, r.to_dict()
        if phase in ("decode", "serve"):
            assert float(r["tpot_ms"]) > 0 and float(r["tok_s_gpu"]) > 0, r.to_dict()
