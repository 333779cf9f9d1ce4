"""Property-based checks of the instance model over random designs (hypothesis).

Random model x accelerator x parallelism x precision x batch x lengths, including designs that
do not fit: every metric is finite (infeasible designs carry a reason, never NaN); more HBM
bandwidth, FLOPs, link bandwidth or memory never makes a design worse; decode never beats the
HBM roofline and prefill never beats the compute roofline. ``derandomize`` keeps CI
reproducible; shapes match ``tests.support.run`` so the compiled model is reused.
"""

import os

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from dse.catalog import load_catalog
from tests.support import ACCELERATORS, MODELS, hardware, metrics_matrix, run, scaled_hardware

PREFILL, DECODE, SERVE = 0.0, 1.0, 2.0
FACTORS = (0.5, 1.0, 2.0, 4.0, 8.0)  # as many as the accelerator table: same compiled shapes
# CI: derandomized, no shrinking (reproducible and fast). DSE_HYPOTHESIS=dev: random examples
# and shrinking to a minimal counterexample, for hunting bugs locally.
_DEV = os.environ.get("DSE_HYPOTHESIS") == "dev"
CHECK = settings(max_examples=300 if _DEV else 100, deadline=None, derandomize=not _DEV,
                 phases=tuple(Phase) if _DEV else (Phase.explicit, Phase.reuse, Phase.generate),
                 suppress_health_check=[HealthCheck.too_slow])  # fmt: skip


@st.composite
def _design(draw):
    """Parallelism (TP, PP, attention DP, EP over TP x DP), precision (FP4 KV included),
    cached prefix, speculation and the serving framework, besides model, batch and lengths."""
    tp, pp, dp = (draw(st.sampled_from(v)) for v in ([1, 2, 4, 8], [1, 1, 2, 4], [1, 1, 2, 8]))
    isl = draw(st.integers(16, 64_000))
    k = draw(st.sampled_from([0, 0, 1, 3]))
    return {
        "model": draw(st.sampled_from(MODELS)), "tp": tp, "pp": pp, "dp": dp,
        "ep": draw(st.sampled_from([1, tp * dp])),
        "weight_bits": draw(st.sampled_from([16, 8, 4])),
        "kv_bits": draw(st.sampled_from([16, 8, 4])),
        "batch": draw(st.integers(1, 512)), "isl": isl, "osl": draw(st.integers(1, 4_000)),
        "prefix": float(int(isl * draw(st.sampled_from([0.0, 0.0, 0.5, 0.9])))),
        "spec_k": k, "spec_tokens_per_step": 0.0,
        "framework": draw(st.sampled_from([0.0, 1.0, 2.0, 3.0])),
    }  # fmt: skip


DESIGN = _design()


def _sweep(design: dict, phase: float, hws):
    rows = [
        dict(design, phase=phase, concurrency=design["batch"], hi=i) for i in range(len(FACTORS))
    ]
    return run(rows, hws=hws)


def _non_increasing(x) -> bool:
    x = np.asarray(x, dtype=np.float64)
    return bool(np.all(x[1:] <= x[:-1] + 1e-9 * np.abs(x[:-1]) + 1e-12))


@CHECK
@given(st.lists(st.tuples(DESIGN, st.sampled_from([PREFILL, DECODE, SERVE]),
                          st.sampled_from(ACCELERATORS)), min_size=1, max_size=16))  # fmt: skip
def test_every_metric_is_finite_and_infeasible_designs_say_why(cases):
    rows = [dict(d, phase=p, hw=h, concurrency=d["batch"]) for d, p, h in cases]
    m = run(rows)
    assert np.isfinite(metrics_matrix(m)).all()
    feasible = np.asarray(m.feasible) > 0.5
    assert (np.asarray(m.reason)[~feasible] > 0).all()  # a reason code for every infeasible one


@CHECK
@given(DESIGN)
def test_more_hbm_bandwidth_never_slows_decode(design):
    m = _sweep(design, DECODE, scaled_hardware("h200_sxm", ("mem_bandwidth_tbs",), FACTORS))
    assert _non_increasing(m.tpot_ms) and _non_increasing(-np.asarray(m.tok_s_gpu))


@CHECK
@given(DESIGN)
def test_more_flops_never_slows_prefill(design):
    hws = scaled_hardware("b200", ("bf16_tflops", "fp8_tflops", "fp4_tflops"), FACTORS)
    m = _sweep(design, PREFILL, hws)
    assert _non_increasing(m.ttft_ms) and _non_increasing(-np.asarray(m.input_tok_s_gpu))


@CHECK
@given(DESIGN)
def test_more_link_bandwidth_never_slows_serving(design):
    hws = scaled_hardware("gb200", ("scaleup_bandwidth_gbs", "scaleout_bandwidth_gbit"), FACTORS)
    m = _sweep(design, SERVE, hws)
    assert _non_increasing(m.tpot_ms) and _non_increasing(m.ttft_ms)


@CHECK
@given(DESIGN)
def test_more_memory_never_fits_fewer_sequences(design):
    m = _sweep(design, SERVE, scaled_hardware("h100_sxm", ("mem_capacity_gb",), FACTORS))
    assert _non_increasing(-np.asarray(m.max_batch))
    assert _non_increasing(-np.asarray(m.feasible))  # what fits keeps fitting


def _active_weight_bytes(model: str, bits: float) -> float:
    """A lower bound on the weight bytes one token's forward pass reads: 80 % of the published
    active parameters (the embedding table, <= 11 % in this catalog, is looked up, not read)."""
    entry = load_catalog().model(model)
    active = entry.published_active_params or entry.published_total_params
    return 0.8 * active * bits / 8.0


@CHECK
@given(DESIGN, st.sampled_from(ACCELERATORS))
def test_decode_never_beats_the_hbm_roofline(design, hw):
    m = run([dict(design, phase=DECODE, hw=hw)])
    if np.asarray(m.feasible)[0] < 0.5:
        return
    bw = float(hardware(hw).mem_bandwidth_tbs) * 1e12
    # one step reads at least the active weights once, shared by the whole batch
    roofline = float(m.batch[0]) * bw / _active_weight_bytes(design["model"], design["weight_bits"])
    assert float(m.tok_s_gpu[0]) <= roofline, (float(m.tok_s_gpu[0]), roofline)


@CHECK
@given(DESIGN, st.sampled_from(ACCELERATORS))
def test_prefill_never_beats_the_compute_roofline(design, hw):
    m = run([dict(design, phase=PREFILL, hw=hw)])
    if np.asarray(m.feasible)[0] < 0.5:
        return
    h = hardware(hw)
    peak = max(float(h.bf16_tflops), float(h.fp8_tflops), float(h.fp4_tflops)) * 1e12
    active = _active_weight_bytes(design["model"], 8.0)  # bytes at 8 bits = parameters
    assert float(m.input_tok_s_gpu[0]) <= peak / (2.0 * active)
