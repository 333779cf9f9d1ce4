"""The serving framework as a `dse predict` setting: defaults said in `assumed`, every value
moves the prediction the way its calibrated host costs say, bad values are one-line reasons."""

import io

import pandas as pd
import pytest

from dse.predict import predict_frame

CSV = """\
id,model,hardware,tp,weight_dtype,phase,batch,concurrency,isl,osl,framework
decode-blank,llama3.1-8b,h100_sxm,1,bf16,decode,1,,1000,500,
decode-static,llama3.1-8b,h100_sxm,1,bf16,decode,1,,1000,500,static
decode-trt,llama3.1-8b,h100_sxm,1,bf16,decode,1,,1000,500,trtllm
serve-blank,llama3.1-8b,h100_sxm,1,bf16,serve,,4,1000,500,
serve-trt,llama3.1-8b,h100_sxm,1,bf16,serve,,4,1000,500,TensorRT-LLM
serve-vllm,llama3.1-8b,h100_sxm,1,bf16,serve,,4,1000,500,vllm
serve-sglang,llama3.1-8b,h100_sxm,1,bf16,serve,,4,1000,500,sglang
serve-bad,llama3.1-8b,h100_sxm,1,bf16,serve,,4,1000,500,triton
"""


@pytest.fixture(scope="module")
def out():
    return predict_frame(pd.read_csv(io.StringIO(CSV))).set_index("id")


def test_blank_framework_is_static_for_a_phase_and_trtllm_for_serving(out):
    assert "framework=static" in out.loc["decode-blank", "assumed"]
    assert "framework=trtllm" in out.loc["serve-blank", "assumed"]
    assert out.loc["decode-blank", "tpot_ms"] == out.loc["decode-static", "tpot_ms"]
    assert out.loc["serve-blank", "tpot_ms"] == out.loc["serve-trt", "tpot_ms"]


def test_a_framework_adds_its_host_work_and_kernels_to_the_gpu_step(out):
    static, trt = out.loc["decode-static", "tpot_ms"], out.loc["decode-trt", "tpot_ms"]
    assert trt > static * 1.02  # more kernels launched, host work not fully hidden
    # Each framework answers differently, and each row is feasible with numbers.
    tpots = out.loc[["serve-trt", "serve-vllm", "serve-sglang"], "tpot_ms"]
    assert tpots.nunique() == 3 and (tpots > 0).all()
    assert (out.loc[["serve-trt", "serve-vllm", "serve-sglang"], "ttft_ms"] > 0).all()


def test_an_unknown_framework_is_a_one_line_reason(out):
    row = out.loc["serve-bad"]
    assert not row["feasible"]
    assert "framework" in row["reason"] and "trtllm" in row["reason"] and "\n" not in row["reason"]


def test_stack_rows_take_the_framework_too():
    csv = (
        "id,model,workload,system,software,batch,framework\n"
        "trt,kimi-k2,agentic_coding,gb200_nvl72,nvfp4_mtp,4,\n"
        "ideal,kimi-k2,agentic_coding,gb200_nvl72,nvfp4_mtp,4,static\n"
        "bad,kimi-k2,agentic_coding,gb200_nvl72,nvfp4_mtp,4,tritonserver\n"
    )
    out = predict_frame(pd.read_csv(io.StringIO(csv))).set_index("id")
    assert out.loc["ideal", "tok_s_user"] > out.loc["trt", "tok_s_user"]  # no host, fused
    assert not out.loc["bad", "feasible"] and "framework" in out.loc["bad", "reason"]
