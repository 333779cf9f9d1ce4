"""KV bytes, restores, the disaggregated KV hand-off and the AFD link, against hand counts.

Every expected value is written out from the model cards (config.json) and the catalog's link
rates, not from the model's own helpers, with tolerances a factor-of-2 error fails:

* KV bytes per cached token (``dse.model.tiers.kv_bytes_per_token``): GQA keeps K and V of
  every KV head in every layer (Llama-3.1-70B: 80 x 2 x 8 x 128 elements); MLA keeps one
  576-wide latent per layer (DeepSeek-V3: 61 x 576); sliding-window layers keep at most the
  window (gpt-oss-120b: 18 full + 18 x 128-token layers, 2 x 8 x 64 each);
* restore time of a tier (``tiers.restore_plan``): ``tokens x bytes / bandwidth + latency``,
  and the system's restore bandwidths and KV hand-off (``dse.model.pools.Pools``);
* the KV hand-off of disaggregated serving (``dse.model.disagg``): ``isl x KV bytes / (NICs x
  rate x link_eff)``;
* the AFD link (``dse.model.afd``): each layer ships ``2 x tokens x hidden x 2 B`` to the FFN
  pool and back at ``min(own NICs, share of the FFN pool's NICs) x link_eff``.
"""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest

from dse.catalog import load_catalog
from dse.model import make_design
from dse.model.afd import afd_link_bandwidth, afd_step
from dse.model.layer import Segment, Setup, kv_bytes_per_token_layer
from dse.model.serving import evaluate
from dse.model.tiers import HOST_LATENCY_S, STORAGE_LATENCY_S, TierHits, kv_bytes_per_token
from dse.model.tiers import restore_plan as _restore_plan
from tests.support import arch, calibrated_efficiency, calibration, f64, runtime_with
from tests.support import hardware as hw

REL = 1e-9
GB = 1e9
CX7 = 400e9 / 8  # 400 Gb/s NIC per GPU, bytes/s (H100, H200, B200, GB200 catalog entries)


def eff(name: str, link_eff: float = 0.8):
    return calibrated_efficiency(name, link_eff=link_eff)


def all_eff(link_eff: float = 0.8):
    """Every generation's shipped efficiencies (as ``serving.evaluate`` takes them), with
    ``link_eff`` set for all."""
    e = calibration().efficiency
    return eqx.tree_at(lambda x: x.link_eff, e, jnp.full_like(e.link_eff, link_eff))


def runtime(scaleout_latency_us: float = 25.0):
    return runtime_with(latency_scaleout_us=scaleout_latency_us)


BYTES = {16.0: 2.0, 8.0: 1.0, 4.0: 4.5 / 8}  # NVFP4 carries one FP8 scale per 16 values

# ----- KV bytes per token -----------------------------------------------------------------------

# Llama-3.1-70B: 80 layers x (K and V) x 8 KV heads x head dim 128.
LLAMA70_ELEMS = 80 * 2 * 8 * 128
# DeepSeek-V3: 61 layers x (kv_lora_rank 512 + rope 64).
DSV3_ELEMS = 61 * (512 + 64)


@pytest.mark.parametrize("bits", sorted(BYTES))
@pytest.mark.parametrize("context", [1.0, 8192.0, 131072.0])
def test_gqa_kv_bytes_per_token(bits, context):
    got = float(kv_bytes_per_token(arch("llama3.1-70b"), f64(bits), f64(context)))
    assert got == pytest.approx(LLAMA70_ELEMS * BYTES[bits], rel=REL)


def test_gqa_kv_bytes_at_the_usual_precisions_in_kilobytes():
    # The usual rule of thumb: 320 KiB per token at BF16, 160 KiB at FP8.
    a = arch("llama3.1-70b")
    assert float(kv_bytes_per_token(a, f64(16.0), f64(4096.0))) == 327_680.0
    assert float(kv_bytes_per_token(a, f64(8.0), f64(4096.0))) == 163_840.0


@pytest.mark.parametrize("bits", sorted(BYTES))
def test_mla_kv_bytes_per_token(bits):
    got = float(kv_bytes_per_token(arch("deepseek-v3"), f64(bits), f64(8192.0)))
    assert got == pytest.approx(DSV3_ELEMS * BYTES[bits], rel=REL)
    # 70,272 B at BF16 (workloads.md §4: ~70 KB/token), 35,136 B at FP8
    assert DSV3_ELEMS * 2 == 70_272


@pytest.mark.parametrize("bits", [16.0, 8.0])
@pytest.mark.parametrize("context", [64.0, 128.0, 4096.0, 65536.0])
def test_sliding_window_layers_keep_at_most_the_window(bits, context):
    # gpt-oss-120b: 36 layers alternate full and 128-token sliding-window attention; 8 KV heads
    # of dim 64. A token of a ``context``-long prompt stays in a sliding layer for min(1, 128/c)
    # of the prompt, on average.
    per_layer = 2 * 8 * 64 * BYTES[bits]
    layers = 18 + 18 * min(1.0, 128.0 / context)
    got = float(kv_bytes_per_token(arch("gpt-oss-120b"), f64(bits), f64(context)))
    assert got == pytest.approx(per_layer * layers, rel=REL)


@pytest.mark.parametrize(
    "model,elems_per_layer", [("llama3.1-70b", 2 * 8 * 128), ("deepseek-v3", 576)]
)
def test_kv_bytes_of_one_layer(model, elems_per_layer):
    for bits, b in BYTES.items():
        got = float(kv_bytes_per_token_layer(arch(model), f64(bits)))
        assert got == pytest.approx(elems_per_layer * b, rel=REL)


# ----- restores ----------------------------------------------------------------------------------

restore_plan = jax.jit(_restore_plan)


def plan(host, storage, isl, bpt, host_bw, storage_bw, *, recompute=1e-3, rate=1.0,
         host_total=1e18, storage_total=1e18):  # fmt: skip
    hits = TierHits(f64(0.0), f64(host), f64(storage))
    return restore_plan(hits, f64(isl), f64(bpt), f64(host_bw), f64(storage_bw), f64(recompute),
                        f64(rate), f64(host_total), f64(storage_total))  # fmt: skip


def grace_share() -> float:
    """Bytes/s one GB200 GPU pulls from its Grace's memory: half of NVLink-C2C's 450 GB/s per
    direction (two GPUs per Grace), below half of Grace's 500 GB/s LPDDR5X."""
    host = load_catalog().host_tier("grace")
    expected = min(450 * GB, 500 * GB) / 2
    assert float(host.bandwidth_per_gpu) == pytest.approx(expected, rel=REL)
    return expected


def test_host_restore_time_is_bytes_over_bandwidth_plus_latency():
    # 60K tokens of Llama-3.1-70B FP8 KV (163,840 B each) restored from host memory by a
    # 4-GPU GB200 worker at link_eff 0.8; recomputing costs far more (1 ms/token).
    tokens, bpt = 60_000.0, 163_840.0
    bw = 4 * grace_share() * 0.8
    p = plan(1.0, 0.0, tokens, bpt, bw, 1.0)
    assert float(p.seconds) == pytest.approx(tokens * bpt / bw + HOST_LATENCY_S, rel=REL)
    assert float(p.host_bytes) == pytest.approx(tokens * bpt, rel=REL)
    assert float(p.recompute_tokens) == 0.0 and float(p.storage_bytes) == 0.0
    assert HOST_LATENCY_S == 10e-6


def test_storage_restore_time_is_bytes_over_bandwidth_plus_latency():
    # DeepSeek-V3 BF16 (70,272 B/token): 100K of 120K prompt tokens from context storage at
    # 200 GB/s, after a 20K-token host hit at 100 GB/s; both restores run one after the other.
    isl, bpt = 120_000.0, 70_272.0
    p = plan(20_000 / isl, 100_000 / isl, isl, bpt, 100 * GB, 200 * GB)
    t_host = 20_000 * bpt / (100 * GB) + HOST_LATENCY_S
    t_storage = 100_000 * bpt / (200 * GB) + STORAGE_LATENCY_S
    assert float(p.seconds) == pytest.approx(t_host + t_storage, rel=1e-9)
    assert float(p.storage_bytes) == pytest.approx(100_000 * bpt, rel=1e-9)
    assert float(p.host_bytes) == pytest.approx(20_000 * bpt, rel=1e-9)
    assert STORAGE_LATENCY_S == 100e-6


def test_restores_are_capped_at_eighty_percent_of_the_tier_link():
    # 10 requests/s each want 50K host tokens x 163,840 B = 81.9 GB/s; the link carries 40 GB/s
    # in all, 80 % of it for restores: 32/81.92 of the hit tokens are restored, the rest
    # recomputed.
    tokens, bpt, rate = 50_000.0, 163_840.0, 10.0
    p = plan(1.0, 0.0, tokens, bpt, 100 * GB, 1.0, recompute=1e-3, rate=rate, host_total=40 * GB)
    share = 0.8 * 40 * GB / (rate * tokens * bpt)
    assert float(p.host_bytes) == pytest.approx(share * tokens * bpt, rel=1e-9)
    assert float(p.recompute_tokens) == pytest.approx(tokens * (1 - share), rel=1e-9)
    assert float(p.seconds) == pytest.approx(share * tokens * bpt / (100 * GB) + 10e-6, rel=1e-9)


# ----- the system's restore bandwidths and KV hand-off (dse.model.pools) -------------------------


@functools.lru_cache(maxsize=1)
def _pool_quantities():
    from dse.model.pools import Pools
    from dse.model.system_design import make_system
    from dse.workload.profile import profile_for

    def quantities(arch_, hw_d, hw_p, host, cal_eff, rt, profile, sd):
        p = Pools(arch_, hw_d, hw_p, hw_d, host, cal_eff, rt, profile, sd, sd.spec_k, f64(1.0))
        return (p.kv_bytes_per_token, p.host_bandwidth, p.storage_bandwidth, p.host_link_total,
                p.storage_link_total, p.handoff_seconds)  # fmt: skip

    profile = eqx.tree_at(lambda p: p.input_tokens, profile_for("chat", sessions=4), f64(8192.0))
    cal = calibration()
    le = eqx.tree_at(
        lambda e: e.link_eff, cal.efficiency, jnp.full_like(cal.efficiency.link_eff, 0.8)
    )
    sd = make_system(
        kv_bits=8.0, tp=8.0, decode_units=16.0, prefill_tp=4.0, prefill_dp=1.0,
        prefill_units=8.0, host_gb_per_gpu=100.0, storage_tb=10.0, storage_gbs=150.0,
    )  # fmt: skip
    out = jax.jit(quantities)(
        arch("llama3.1-70b"), hw("h100_sxm"), hw("h100_sxm"),
        load_catalog().host_tier("x86_pcie5"), le, runtime(25.0), profile, sd,
    )  # fmt: skip
    return tuple(float(x) for x in out)


def test_pool_restore_bandwidths_and_handoff_by_hand():
    kvb, host_bw, storage_bw, host_total, storage_total, handoff = _pool_quantities()
    assert kvb == LLAMA70_ELEMS * 1.0  # FP8 KV
    # Prefill worker of 4 H100s: each pulls min(PCIe 64 GB/s, its 1/8 of the node's 512 GB/s
    # of PCIe and 560 GB/s of DDR5) = 64 GB/s from host memory; link_eff 0.8.
    per_gpu = min(64 * GB, min(512 * GB, 560 * GB) / 8)
    assert host_bw == pytest.approx(4 * per_gpu * 0.8, rel=REL)
    assert host_total == pytest.approx(8 * per_gpu * 0.8, rel=REL)  # all 8 prefill GPUs
    # Storage: 150 GB/s asked, under the worker's 4 x 50 GB/s NICs (and the pool's 8).
    assert storage_bw == pytest.approx(150 * GB * 0.8, rel=REL)
    assert storage_total == pytest.approx(150 * GB * 0.8, rel=REL)
    # Hand-off: the whole 8192-token prompt's KV over the smaller side's NICs (prefill worker: 4
    # of them; decode worker: 8), plus one NIC-to-NIC hop (ConnectX-7: 3.2 us, conf/hardware).
    expected = 8192 * LLAMA70_ELEMS / (4 * CX7 * 0.8) + 3.2e-6
    assert handoff == pytest.approx(expected, rel=REL)


# ----- disaggregated serving's KV hand-off, as dse predict sees it (dse.model.serving) ----------

_disagg = jax.jit(functools.partial(evaluate, path=3))


def disagg_ttft(model, nic_scale, kv_bits=8.0, isl=8192.0, link_eff=0.8, gpus=8.0):
    # H200 (141 GB, 400 Gb/s NIC per GPU): DeepSeek-V3 FP8 fits a TP8 worker.
    base = hw("h200_sxm")
    nic = base.scaleout_bandwidth_gbit * nic_scale
    h = eqx.tree_at(lambda x: x.scaleout_bandwidth_gbit, base, nic)
    d = make_design(
        tp=gpus, mode=1.0, kv_bits=kv_bits, weight_bits=8.0, isl=isl, osl=256.0,
        concurrency=1.0, prefill_gpus=gpus, decode_gpus=gpus,
    )  # fmt: skip
    return float(_disagg(arch(model), h, all_eff(link_eff), runtime(), d).ttft_ms) / 1e3


def handoff_seconds(model, **kw):
    """The hand-off part of TTFT: at concurrency 1 decode limits the rate, so TTFT is one
    prompt's prefill plus the hand-off; the prefill (one NVLink domain, pp 1) does not touch
    the NIC, so TTFT minus TTFT with a practically infinite NIC is the hand-off alone."""
    slow, fast = disagg_ttft(model, 1.0, **kw), disagg_ttft(model, 1e9, **kw)
    assert fast > 0.0 and slow > fast  # the prefill is there and the hand-off adds to it
    return slow - fast


@pytest.mark.parametrize("kv_bits,bytes_per_elem", [(8.0, 1.0), (16.0, 2.0)])
def test_disagg_kv_handoff_of_a_gqa_model(kv_bits, bytes_per_elem):
    # Llama-3.1-70B, 8192-token prompt, TP8 worker: 8 NICs x 50 GB/s x 0.8.
    got = handoff_seconds("llama3.1-70b", kv_bits=kv_bits)
    expected = 8192 * LLAMA70_ELEMS * bytes_per_elem / (8 * CX7 * 0.8)
    assert got == pytest.approx(expected, rel=1e-6)


def test_disagg_kv_handoff_of_an_mla_model():
    got = handoff_seconds("deepseek-v3", kv_bits=8.0, isl=4096.0, link_eff=0.6)
    assert got == pytest.approx(4096 * DSV3_ELEMS * 1.0 / (8 * CX7 * 0.6), rel=1e-6)


# Fixed: the instance model (then disagg.py) handed off every layer at the full prompt
# (gpt-oss-120b at isl 8192 FP8:
# 36 x 1024 B per token, 0.94 ms, instead of (18 + 18 x 128/8192) x 1024 B, 0.48 ms: 1.97x).
def test_disagg_kv_handoff_of_a_sliding_window_model_moves_only_the_window():
    per_layer = 2 * 8 * 64 * 1.0
    expected = 8192 * per_layer * (18 + 18 * 128 / 8192) / (8 * CX7 * 0.8)
    assert handoff_seconds("gpt-oss-120b") == pytest.approx(expected, rel=1e-6)


# ----- AFD link (dse.model.afd) -----------------------------------------------------------------


def afd_setups(att_hw="gb200", ffn_hw="gb200", att=None, ffn=None, le=0.8, out_lat=25.0):
    att = att or {}
    ffn = ffn or {}
    a = arch("llama3.1-70b")
    s_att = Setup(a, hw(att_hw), eff(att_hw, le), runtime(out_lat), make_design(**att))
    s_ffn = Setup(a, hw(ffn_hw), eff(ffn_hw, le), runtime(out_lat), make_design(**ffn))
    return s_att, s_ffn


def test_afd_link_bandwidth_is_the_attention_workers_own_nics():
    # An 8-GPU attention worker (tp 2, dp 4) has 8 x 50 GB/s; 4 such workers share a 64-GPU FFN
    # pool (3.2 TB/s of NICs, 800 GB/s each): the worker's own NICs bind.
    s_att, s_ffn = afd_setups(att=dict(tp=2.0, dp=4.0), ffn=dict(tp=4.0, dp=8.0, pp=2.0))
    got = float(afd_link_bandwidth(s_att, s_ffn, f64(4.0)))
    assert got == pytest.approx(min(8 * CX7, 64 * CX7 / 4) * 0.8, rel=REL)
    assert got == pytest.approx(8 * CX7 * 0.8, rel=REL)


def test_afd_link_bandwidth_is_a_share_of_the_ffn_pool():
    # 32 attention workers of 8 share a 64-GPU FFN pool: 2 FFN NICs each (100 GB/s) bind.
    s_att, s_ffn = afd_setups(att=dict(tp=8.0), ffn=dict(tp=4.0, dp=8.0, pp=2.0))
    got = float(afd_link_bandwidth(s_att, s_ffn, f64(32.0)))
    assert got == pytest.approx(64 * CX7 / 32 * 0.8, rel=REL)


def test_afd_step_link_time_per_layer():
    # One micro-batch (m = 1), no collectives on either side (tp = dp = ep = 1): the step's
    # network time is the link alone. Llama-3.1-70B (80 layers, hidden 8192), 64 decode tokens:
    # per layer 2 x 64 x 8192 x 2 B over one GB200 NIC at 0.8, plus each way one NIC-to-NIC hop
    # (GB200's ConnectX-7: 3.2 us, conf/hardware) and one kernel on the attention side; the
    # collectives' scale-out latency (25 us) is not a point-to-point cost.
    s_att, s_ffn = afd_setups(le=0.8, out_lat=25.0)

    def step(att, ffn, seqs):  # Segment.absorbed is static: build the segment inside
        return afd_step(att, ffn, Segment(seqs, f64(1.0), f64(2000.0)), f64(1.0), f64(1.0))

    cost = jax.jit(step)(s_att, s_ffn, f64(64.0))
    link = min(CX7, CX7 / 1.0) * 0.8
    hop = (3.2 + float(s_att.eff.kernel_us)) * 1e-6
    expected = 80 * (2 * 64 * 8192 * 2 / link + 2 * hop)
    assert float(cost.network) == pytest.approx(expected, rel=REL)
