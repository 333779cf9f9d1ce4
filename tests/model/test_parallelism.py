"""Inconsistent parallel layouts never silently produce numbers (issue 6): each gets its own
system reason, with finite metrics, and a nearby consistent layout stays feasible."""

import numpy as np
import pytest
import yaml

from dse.catalog import conf_dir
from dse.model.reasons import REASON_TEXT, REASONS
from dse.model.system_metrics import SYSTEM_METRIC_FIELDS
from dse.search.evaluate import Evaluator
from dse.search.space import Space
from dse.stack import Stack

KIMI = "kimi-k2"  # 64 heads, 384 routed experts, 61 layers, moe_intermediate_size 2048
LLAMA = "llama3.1-70b"  # dense, 64 heads, 80 layers
MIXTRAL = "mixtral-8x7b"  # 8 experts, 32 heads
LAYOUT_CODES = (
    "tp_not_dividing_heads", "prefill_tp_not_dividing_heads", "pp_exceeds_layers",
    "ep_exceeds_experts", "ep_not_dividing_tp_dp", "prefill_ep_exceeds_experts",
    "prefill_ep_not_dividing_tp_dp", "ffn_pp_exceeds_layers", "ffn_tp_not_dividing_mlp",
    "ffn_ep_exceeds_experts", "decode_units_not_whole_workers",
    "prefill_units_not_whole_workers", "needs_scaleout_network", "kvp_not_dividing_tp",
)  # fmt: skip
LAYOUT_TEXTS = {REASON_TEXT[REASONS[c]] for c in LAYOUT_CODES}
AFD = dict(model=KIMI, system="vr200_lpx_afd", software="nvfp4_mtp", batch=4)


@pytest.fixture(scope="module")
def stack():
    return Stack(workload="agentic_coding", sessions=32)


def _cases(stack):
    """code -> (a design that triggers it, a nearby consistent design that is feasible)."""
    vr200, groq = stack.hw_index["vr200"], stack.hw_index["groq_lpu"]
    rubin = dict(model=KIMI, system="vr200_nvl72")  # tp 8, ep 8, 56 decode + 16 prefill
    gpu_ffn = dict(AFD, ffn_hw=vr200, ffn_units=96, ffn_pp=4)
    return {
        "tp_not_dividing_heads": (
            dict(rubin, tp=6, ep=6, decode_units=48),
            dict(rubin, tp=8, ep=8, decode_units=48),
        ),
        "prefill_tp_not_dividing_heads": (
            dict(rubin, prefill_tp=6, prefill_ep=6, prefill_units=18),
            dict(rubin, prefill_tp=8, prefill_ep=8, prefill_units=16),
        ),
        "pp_exceeds_layers": (
            dict(model=LLAMA, system="vr200_nvl72", tp=1, pp=81, decode_units=81),
            dict(model=LLAMA, system="vr200_nvl72", tp=1, pp=80, decode_units=80),
        ),
        "ep_exceeds_experts": (
            dict(model=MIXTRAL, system="vr200_nvl72", tp=16, ep=16, decode_units=64),
            dict(model=MIXTRAL, system="vr200_nvl72", tp=16, ep=8, decode_units=64),
        ),
        "ep_not_dividing_tp_dp": (dict(rubin, ep=16), dict(rubin, ep=8)),
        "prefill_ep_exceeds_experts": (
            dict(model=MIXTRAL, system="vr200_nvl72", prefill_tp=16, prefill_ep=16),
            dict(model=MIXTRAL, system="vr200_nvl72", prefill_tp=16, prefill_ep=8),
        ),
        "prefill_ep_not_dividing_tp_dp": (
            dict(rubin, prefill_ep=16),
            dict(rubin, prefill_ep=4),
        ),
        "ffn_pp_exceeds_layers": (dict(AFD, ffn_pp=62), dict(AFD, ffn_pp=61)),
        "ffn_tp_not_dividing_mlp": (dict(gpu_ffn, ffn_tp=3), dict(gpu_ffn, ffn_tp=4)),
        # 48 layer groups of 400 chips: 400-way EP over 384 experts.
        "ffn_ep_exceeds_experts": (
            dict(AFD, ffn_units=48 * 400),
            dict(AFD, ffn_units=48 * 384),
        ),
        "decode_units_not_whole_workers": (dict(rubin, decode_units=60), dict(rubin)),
        "prefill_units_not_whole_workers": (
            dict(rubin, prefill_units=20),
            dict(rubin, prefill_units=24),
        ),
        # groq_lpu has no NIC: a P/D split (KV hand-off) needs one; a worker beyond its
        # 10,440-chip domain too.
        "needs_scaleout_network": (
            dict(model=LLAMA, system="vr200_nvl72", decode_hw=groq, tp=8, pp=80, decode_units=640),
            dict(model=LLAMA, system="vr200_nvl72", tp=8, pp=1, decode_units=64),
        ),
        "kvp_not_dividing_tp": (dict(rubin, kvp=3), dict(rubin, kvp=4)),
    }


def test_each_layout_inconsistency_gets_its_own_reason(stack):
    cases = _cases(stack)
    assert set(cases) == set(LAYOUT_CODES)
    rows = [r for bad_ok in cases.values() for r in bad_ok]
    df = stack.evaluate([dict({"software": "default"}, **r) for r in rows])
    numeric = [f for f in SYSTEM_METRIC_FIELDS if f not in ("feasible", "reason", "bound")]
    assert np.isfinite(df[numeric].to_numpy()).all()
    for i, code in enumerate(cases):
        bad, ok = df.iloc[2 * i], df.iloc[2 * i + 1]
        assert not bad["feasible"], code
        assert bad["reason"] == REASON_TEXT[REASONS[code]], (code, bad["reason"])
        assert ok["feasible"], (code, ok["reason"])


def test_reason_codes_are_stable_and_explained():
    # Existing codes keep their numbers; every code has a one-line text that says what to do.
    old = {"ok": 0.0, "weights_exceed_memory": 1.0, "kv_exceeds_memory": 2.0,
           "no_sequence_fits": 3.0, "disagg_pools_missing": 4.0,
           "context_exceeds_memory": 5.0, "ffn_pool_too_small": 6.0,
           "prefill_pool_too_small": 7.0, "host_memory_exceeded": 8.0,
           "storage_bandwidth_exceeded": 9.0, "pool_smaller_than_worker": 10.0,
           "afd_needs_prefill_pool": 11.0}  # fmt: skip
    assert {k: REASONS[k] for k in old} == old
    assert len(set(REASONS.values())) == len(REASONS)
    assert set(REASON_TEXT) == set(REASONS.values())
    for code in LAYOUT_CODES:
        text = REASON_TEXT[REASONS[code]]
        assert "\n" not in text and ";" in text  # what is wrong; how to fix it


def test_kv_parallel_decode_fits_the_agentic_context_on_lpx(stack):
    # Kimi-K2 on LPX-only decode (tp 48 x pp 61): TP alone replicates the MLA latent on all 48
    # chips of a stage, so not one agentic context fits in SRAM beside the weights; 8 KV
    # slices hold 1/8 of it each (issue 17 item 1).
    rows = [dict(model=KIMI, system="vr200_lpx_decode", software="nvfp4_mtp", kvp=k) for k in
            (1, 8)]  # fmt: skip
    plain, split = (r for _, r in stack.evaluate(rows).iterrows())
    assert not plain["feasible"]
    assert plain["reason"] == REASON_TEXT[REASONS["no_sequence_fits"]]
    assert split["feasible"], split["reason"]
    assert split["max_batch"] > 4.0 * plain["max_batch"]


def test_a_system_config_with_kvp_not_dividing_tp_is_refused_in_one_line(stack):
    system = {"decode": {"hardware": "gb200", "units": 8, "tp": 8, "kvp": 3}}
    with pytest.raises(ValueError, match=r"system.decode.kvp=3 does not divide tp=8"):
        stack.design_values(KIMI, system)


def test_slow_but_legal_layouts_are_not_reasons(stack):
    groq = stack.hw_index["groq_lpu"]
    rows = [
        # A dense model ignores ep (no experts): the NVL72 configs' ep=8 changes no number.
        dict(model=LLAMA, system="vr200_nvl72"),
        dict(model=LLAMA, system="vr200_nvl72", ep=1, prefill_ep=1),
        # TP larger than an HGX node's 8-GPU NVLink domain spills onto the NIC (charged).
        dict(model=LLAMA, system="h200_hgx", tp=16, decode_units=16),
        # Uneven layers per stage (61 over 4) and experts per rank (384 over 48) are legal.
        dict(model=KIMI, system="vr200_nvl72", tp=8, pp=4, ep=8, decode_units=64),
        # SRAM-first chips split tensors at any granularity: tp=48 over 64 heads.
        dict(model=KIMI, system="vr200_lpx_decode", software="nvfp4_mtp", batch=1),
        dict(AFD, ffn_tp=3),
        # Uneven FFN layer groups: 2304 chips over 61 groups.
        dict(AFD, ffn_pp=61),
        # No NIC but everything inside the scale-up domain, aggregated.
        dict(model=LLAMA, system="vr200_nvl72", decode_hw=groq, tp=8, pp=80, decode_units=640,
             prefill_units=0),
    ]  # fmt: skip
    df = stack.evaluate([dict({"software": "default"}, **r) for r in rows])
    assert not df["reason"].isin(LAYOUT_TEXTS).any(), df["reason"].tolist()
    same = ["tok_s_user", "output_tok_s", "usd_per_mtok", "ttft_ms"]
    assert df.iloc[0][same].to_numpy() == pytest.approx(df.iloc[1][same].to_numpy(), rel=1e-12)
    assert df.iloc[0]["feasible"] and df.iloc[2]["feasible"]


def test_seed_study_space_has_no_layout_reason(stack):
    # The default study's space was built from consistent layouts: none of its points may lose
    # feasibility to the new checks (a deterministic sample of every product).
    space = Space.from_mapping(
        yaml.safe_load((conf_dir() / "space" / "seed_rubin_lpx.yaml").read_text())
    )
    ev = Evaluator(stack, KIMI, space, chunk=1024)
    ids = np.unique(np.concatenate([np.arange(0, space.size, 29), space.offsets[:-1]]))
    metrics = ev.evaluate(ev.decode(ids))
    codes = {REASONS[c] for c in LAYOUT_CODES}
    assert not np.isin(metrics["reason"], list(codes)).any()
    assert (metrics["feasible"] > 0.5).mean() > 0.3


def test_gradients_stay_finite_at_inconsistent_layouts(stack):
    from dse.search.gradients import sensitivities

    cases = _cases(stack)
    designs = [
        stack.design_values(r.pop("model"), r.pop("system"), r.pop("software", "default"), **r)
        for r in (dict(cases[c][0]) for c in ("tp_not_dividing_heads", "ep_not_dividing_tp_dp"))
    ]
    df = sensitivities(stack, designs)
    assert df["finite"].all() and np.isfinite(df["derivative"]).all()
    assert not df["feasible"].any()
