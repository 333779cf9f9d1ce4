"""A `dse predict` row without a layout: every deployable layout of its GPUs is predicted and
the best for the row's phase is answered, named in `assumed` (issue 14, item 6)."""

import io

import pandas as pd
import pytest

from dse.catalog import load_catalog
from dse.predict import predict_frame
from dse.predict.frame import layout_candidates

CSV = """\
id,model,hardware,gpus,weight_dtype,phase,concurrency,batch,isl,osl
serve-70b,llama3.1-70b,h200_sxm,8,fp8,serve,16,,2000,500
decode-8b,llama3.1-8b,h100_sxm,2,bf16,decode,,8,1000,500
too-big,llama3.1-405b,h100_sxm,1,bf16,serve,1,,1000,100
"""


@pytest.fixture(scope="module")
def out():
    return predict_frame(pd.read_csv(io.StringIO(CSV))).set_index("id")


def test_candidates_are_deployable_layouts_of_the_gpus():
    row = dict(model="deepseek-r1", hardware="b200", gpus=8)
    cands = layout_candidates(row, load_catalog())
    assert all(c["tp"] * c["pp"] * c["dp"] == 8 for c in cands)
    assert all((c["tp"] * c["dp"]) % c["ep"] == 0 for c in cands)
    assert {(c["tp"], c["dp"], c["ep"]) for c in cands} >= {(8, 1, 1), (8, 1, 8), (1, 8, 8)}


def test_the_answer_is_the_best_candidate_and_says_so(out):
    row = out.loc["serve-70b"]
    assert row["feasible"] and "layout searched" in row["assumed"]
    # Every candidate predicted on its own: none beats the one chosen.
    base = dict(model="llama3.1-70b", hardware="h200_sxm", gpus=8, weight_dtype="fp8",
                phase="serve", concurrency=16, isl=2000, osl=500)  # fmt: skip
    each = predict_frame(pd.DataFrame(layout_candidates(base, load_catalog())))
    best = each.loc[each["feasible"], "tok_s_gpu"].max()
    assert row["tok_s_gpu"] == pytest.approx(best, rel=1e-9)
    assert f"tp={row['tp']:g}" in row["assumed"]
    # A decode row picks for TPOT.
    assert "best tpot_ms" in out.loc["decode-8b", "assumed"]


def test_no_layout_that_fits_is_one_line(out):
    row = out.loc["too-big"]
    assert not row["feasible"]
    assert "no layout of 1 GPUs works" in row["reason"] and "\n" not in row["reason"]
