"""FLOPs and bytes of one layer's operations (dse.model.layer), checked against hand counts.

On an ideal machine (every efficiency 1, no overheads, no small-GEMM penalty, one peak for all
precisions, practically infinite memory bandwidth) an op's time is exactly FLOPs / peak, so
``time * peak`` must equal the FLOPs counted by hand from the architecture. Swapping the roles
(practically infinite FLOP/s, finite bandwidth) exposes the bytes.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import pytest

from dse.model import default_runtime, make_design
from dse.model.layer import (
    Segment,
    Setup,
    attention_core,
    attention_projections,
    dense_mlp,
    kv_bytes_per_token_layer,
    kv_shards,
    logits,
    moe_experts,
)
from dse.model.memory import kv_bytes_per_sequence_gpu, max_sequences, weight_bytes_per_gpu
from dse.model.step import forward_cost
from tests.support import arch, ideal_efficiency, ideal_hardware

PEAK_TFLOPS = 1000.0
PEAK = PEAK_TFLOPS * 1e12

# Llama-3.1-70B by hand (config.json): d, heads, kv heads, head dim, MLP width, vocab, layers.
D, NH, NKV, HD, FFN, VOCAB, LAYERS = 8192, 64, 8, 128, 28672, 128256, 80
ATTN_PARAMS = D * (NH * HD) + 2 * D * NKV * HD + NH * HD * D
MLP_PARAMS = 3 * D * FFN


def f64(x):
    return jnp.asarray(float(x), dtype=jnp.float64)


def setup(model: str, hw=None, eff=None, rt=None, **design) -> Setup:
    return Setup(
        arch(model),
        hw if hw is not None else ideal_hardware(PEAK_TFLOPS),
        eff if eff is not None else ideal_efficiency(),
        rt if rt is not None else default_runtime(),
        make_design(**{"framework": 0.0, **design}),  # static: no host work in the step
    )


def flops_of(cost) -> float:
    return float(cost.total) * PEAK


def test_hand_counts_match_catalog_architecture():
    a = arch("llama3.1-70b")
    assert float(a.attention_params_per_layer()) == ATTN_PARAMS == 150_994_944
    assert float(a.dense_mlp_params()) == MLP_PARAMS


# ----- GEMMs ------------------------------------------------------------------------------------
@pytest.mark.parametrize("m", [1.0, 7.0, 4096.0])
@pytest.mark.parametrize("bits", [16.0, 8.0, 4.0])
def test_attention_projection_flops(m, bits):
    s = setup("llama3.1-70b", weight_bits=bits)
    assert flops_of(attention_projections(s, f64(m))) == pytest.approx(
        2 * m * ATTN_PARAMS, rel=1e-12
    )


@pytest.mark.parametrize("tp", [1.0, 2.0, 8.0])
def test_projection_and_mlp_flops_split_over_tp(tp):
    s = setup("llama3.1-70b", tp=tp)
    m = 300.0
    assert flops_of(attention_projections(s, f64(m))) == pytest.approx(
        2 * m * ATTN_PARAMS / tp, rel=1e-12
    )
    assert flops_of(dense_mlp(s, f64(m), f64(FFN))) == pytest.approx(
        2 * m * MLP_PARAMS / tp, rel=1e-12
    )


@pytest.mark.parametrize("m", [1.0, 33.0, 8192.0])
def test_dense_mlp_flops(m):
    s = setup("llama3.1-70b")
    assert flops_of(dense_mlp(s, f64(m), f64(FFN))) == pytest.approx(2 * m * 3 * D * FFN, rel=1e-12)


def test_logits_flops():
    s = setup("llama3.1-70b", tp=4.0)
    assert flops_of(logits(s, f64(5.0))) == pytest.approx(2 * 5 * VOCAB * D / 4, rel=1e-12)


@pytest.mark.parametrize("bits,bytes_per_weight", [(16.0, 2.0), (8.0, 1.0), (4.0, 4.5 / 8)])
def test_gemm_weight_bytes_when_memory_bound(bits, bytes_per_weight):
    # Practically infinite FLOP/s, 1 TB/s: time * bandwidth = weight bytes + activations in/out.
    hw = ideal_hardware(tflops=1e12, tbs=1.0)
    s = setup("llama3.1-70b", hw=hw, weight_bits=bits)
    nbytes = float(attention_projections(s, f64(1.0)).total) * 1e12
    activations = (D + D) * 2.0  # one token in and out, BF16
    assert nbytes == pytest.approx(ATTN_PARAMS * bytes_per_weight + activations, rel=1e-12)


def test_small_gemms_are_less_efficient():
    eff = ideal_efficiency(gemm_half_tokens=64.0)
    s = setup("llama3.1-70b", eff=eff)
    # per-token time falls with m and halves-efficiency point is at m = 64
    t1 = float(dense_mlp(s, f64(1.0), f64(FFN)).total)
    t64 = float(dense_mlp(s, f64(64.0), f64(FFN)).total) / 64.0
    tbig = float(dense_mlp(s, f64(1e6), f64(FFN)).total) / 1e6
    assert t1 > t64 > tbig
    assert t64 == pytest.approx(2 * tbig, rel=1e-3)


# ----- MoE --------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", [dict(), dict(dp=8.0, ep=8.0), dict(tp=8.0, ep=8.0)])
def test_moe_expert_flops(layout):
    a = arch("deepseek-v3")
    d, f, k, e = 7168, 2048, 8, 256
    router = e * d + e  # weights + score-correction bias
    rt = eqx.tree_at(
        lambda r: r.moe_imbalance, default_runtime(), f64(1.0)
    )  # perfectly balanced experts
    s = setup("deepseek-v3", rt=rt, **layout)
    tokens = 64.0  # per DP rank
    tp, dp = layout.get("tp", 1.0), layout.get("dp", 1.0)
    cost, imbalance = moe_experts(s, f64(tokens))
    assert float(imbalance) == 1.0
    # Every GPU of the tp*dp group computes its share of the stage's routed tokens x experts.
    expert_flops = 2 * tokens * dp * k * 3 * d * f / (tp * dp)
    assert flops_of(cost) == pytest.approx(expert_flops + 2 * tokens * router, rel=1e-9)
    assert float(a.expert_params()) == 3 * d * f


def test_moe_imbalance_grows_with_ep():
    base = setup("deepseek-v3", dp=8.0, ep=1.0)
    wide = setup("deepseek-v3", dp=8.0, ep=8.0)
    _, i1 = moe_experts(base, f64(64.0))
    _, i8 = moe_experts(wide, f64(64.0))
    assert float(i1) == 1.0 and 1.0 < float(i8) <= float(default_runtime().moe_imbalance)


def test_moe_small_batch_streams_only_touched_experts():
    # Memory-bound decode of one token touches k of E experts: far fewer bytes than all experts.
    hw = ideal_hardware(tflops=1e12, tbs=1.0)
    s = setup("deepseek-v3", hw=hw, weight_bits=8.0)
    one, _ = moe_experts(s, f64(1.0))
    many, _ = moe_experts(s, f64(4096.0))
    a = arch("deepseek-v3")
    all_experts = 256 * float(a.expert_params())
    assert float(one.total) * 1e12 < 0.05 * all_experts
    assert float(many.total) * 1e12 >= 0.99 * all_experts


# ----- attention core ---------------------------------------------------------------------------
def gqa_pairs(seqs, q, past):
    return seqs * (q * past + q * (q + 1) / 2)


@pytest.mark.parametrize(
    "segs",
    [
        [(1.0, 1.0, 1000.0)],  # decode one token against 1000 cached
        [(5.0, 4.0, 2047.0)],  # speculative verify of 4 tokens
        [(2.0, 512.0, 0.0)],  # causal prefill
        [(1.0, 4000.0, 28000.0)],  # prefill with a cached prefix
        [(3.0, 1.0, 300.0), (0.5, 1000.0, 0.0)],  # mixed decode + chunked prefill
    ],
)
@pytest.mark.parametrize("tp", [1.0, 4.0])
def test_gqa_attention_core_flops(segs, tp):
    s = setup("llama3.1-70b", tp=tp)
    segments = tuple(Segment(f64(n), f64(q), f64(p), absorbed=(q == 1.0)) for n, q, p in segs)
    expected = sum(4 * HD * (NH / tp) * gqa_pairs(n, q, p) for n, q, p in segs)
    assert flops_of(attention_core(s, segments, sliding=False)) == pytest.approx(
        expected, rel=1e-12
    )


def test_mla_attention_core_flops():
    s = setup("deepseek-v3")
    heads, latent, rope, nope, v = 128, 512, 64, 128, 128
    # Absorbed (decode): scores against the 576-wide latent, values from the 512-wide latent.
    seg = Segment(f64(3.0), f64(1.0), f64(999.0), absorbed=True)
    expected = heads * gqa_pairs(3, 1, 999) * (2 * (latent + rope) + 2 * latent)
    assert flops_of(attention_core(s, (seg,), sliding=False)) == pytest.approx(expected, rel=1e-12)
    # Prefill: decompress K/V of the cached prefix, then ordinary 192/128-dim attention.
    seg = Segment(f64(2.0), f64(256.0), f64(1024.0), absorbed=False)
    expected = heads * (
        gqa_pairs(2, 256, 1024) * (2 * (nope + rope) + 2 * v) + 2 * 2 * 1024 * latent * (nope + v)
    )
    assert flops_of(attention_core(s, (seg,), sliding=False)) == pytest.approx(expected, rel=1e-12)


def test_sliding_window_caps_attention_work():
    s = setup("gpt-oss-120b")
    seg = (Segment(f64(1.0), f64(1.0), f64(100_000.0)),)
    full = flops_of(attention_core(s, seg, sliding=False))
    slid = flops_of(attention_core(s, seg, sliding=True))
    assert full == pytest.approx(4 * 64 * 64 * 100_001, rel=1e-12)
    assert slid == pytest.approx(4 * 64 * 64 * 128, rel=1e-12)  # window of 128 keys


def test_decode_attention_reads_the_whole_kv_cache():
    hw = ideal_hardware(tflops=1e12, tbs=1.0)
    for kv_bits in (16.0, 8.0):
        s = setup("llama3.1-70b", hw=hw, kv_bits=kv_bits, tp=2.0)
        seg = Segment(f64(4.0), f64(1.0), f64(4000.0))
        nbytes = float(attention_core(s, (seg,), sliding=False).total) * 1e12
        kv = 4 * 4001 * 2 * NKV * HD * (kv_bits / 8) / 2  # KV heads split over tp=2
        assert kv <= nbytes <= 1.01 * kv


# ----- KV cache size ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "model,bits,expected",
    [
        ("llama3.1-70b", 16.0, 2 * 8 * 128 * 2),
        ("llama3.1-70b", 8.0, 2 * 8 * 128 * 1),
        ("llama3.1-8b", 16.0, 2 * 8 * 128 * 2),
        ("gpt-oss-120b", 16.0, 2 * 8 * 64 * 2),
        ("deepseek-v3", 16.0, 576 * 2),  # MLA: 512 latent + 64 RoPE key
        ("deepseek-v3", 8.0, 576 * 1),
    ],
)
def test_kv_bytes_per_token_layer(model, bits, expected):
    assert float(kv_bytes_per_token_layer(arch(model), f64(bits))) == expected


def test_kv_shards():
    assert float(kv_shards(arch("llama3.1-70b"), f64(4.0))) == 4.0
    assert float(kv_shards(arch("llama3.1-70b"), f64(16.0))) == 8.0  # replicated past n_kv
    assert float(kv_shards(arch("deepseek-v3"), f64(8.0))) == 1.0  # MLA latent is replicated


def test_kv_bytes_per_sequence_with_sliding_layers():
    s = setup("gpt-oss-120b", kv_bits=8.0)
    ctx = 10_000.0
    per_token_layer = 2 * 8 * 64
    expected = per_token_layer * (18 * ctx + 18 * 128)
    assert float(kv_bytes_per_sequence_gpu(s, f64(ctx))) == pytest.approx(expected, rel=1e-12)


# ----- weights per GPU --------------------------------------------------------------------------
@pytest.mark.parametrize("tp,pp", [(1.0, 1.0), (4.0, 1.0), (2.0, 2.0)])
def test_dense_weight_bytes_per_gpu(tp, pp):
    s = setup("llama3.1-70b", tp=tp, pp=pp, weight_bits=8.0)
    layers = LAYERS * (ATTN_PARAMS + MLP_PARAMS) * 1.0 / (tp * pp)
    head_copies = 2.0 if pp == 1.0 else 1.0
    embed = head_copies * VOCAB * D * 2.0 / tp  # embedding and head stay BF16
    assert float(weight_bytes_per_gpu(s, f64(0.0) > 0)) == pytest.approx(layers + embed, rel=1e-12)


def test_tp_shards_sum_to_the_checkpoint():
    for model in ("deepseek-v3", "qwen3-30b-a3b", "gpt-oss-120b"):
        a = arch(model)
        s = setup(model, tp=8.0, weight_bits=16.0)
        total = 8 * float(weight_bytes_per_gpu(s, f64(0.0) > 0))
        norms = float(a.num_layers) * 2 * float(a.hidden_size)  # RMSNorm weights are not counted
        expected = (float(a.layer_weight_params()) - norms) * 2.0 + 2.0 * float(
            a.vocab_size * a.hidden_size
        ) * 2.0
        if float(a.tie_word_embeddings):
            expected -= float(a.vocab_size * a.hidden_size) * 2.0
        assert total == pytest.approx(expected, rel=1e-9), model


def test_fp8_kv_doubles_sequences_that_fit():
    s16 = setup("llama3.1-70b", hw=ideal_hardware(mem_capacity_gb=80.0), tp=8.0, kv_bits=16.0)
    s8 = setup("llama3.1-70b", hw=ideal_hardware(mem_capacity_gb=80.0), tp=8.0, kv_bits=8.0)
    no = f64(0.0) > 0
    n16 = float(max_sequences(s16, f64(8192.0), no))
    n8 = float(max_sequences(s8, f64(8192.0), no))
    assert 1.0 < n16 < 2048.0
    assert n8 == pytest.approx(2.0 * n16, rel=1e-12)


# ----- one whole forward pass -------------------------------------------------------------------
def test_forward_pass_flops_dense():
    s = setup("llama3.1-70b")
    q, n = 512.0, 2.0
    seg = Segment(f64(n), f64(q), f64(0.0), absorbed=False)
    cost = forward_cost(s, (seg,), f64(n))
    per_layer = 2 * n * q * (ATTN_PARAMS + MLP_PARAMS) + 4 * HD * NH * gqa_pairs(n, q, 0.0)
    expected = LAYERS * per_layer + 2 * n * VOCAB * D
    assert flops_of(cost) == pytest.approx(expected, rel=1e-9)
    assert float(cost.network) == 0.0 and float(cost.overhead) == 0.0


def test_forward_pass_flops_moe_mla():
    a = arch("deepseek-v3")
    rt = eqx.tree_at(lambda r: r.moe_imbalance, default_runtime(), f64(1.0))
    s = setup("deepseek-v3", rt=rt)
    seg = Segment(f64(16.0), f64(1.0), f64(2000.0), absorbed=True)
    tokens = 16.0
    attn = 2 * tokens * float(a.attention_params_per_layer()) + 128 * gqa_pairs(16, 1, 2000) * (
        2 * 576 + 2 * 512
    )
    dense = 2 * tokens * float(a.dense_mlp_params())
    moe = 2 * tokens * float(a.moe_layer_params(active=True))  # k experts + shared + router
    expected = 61 * attn + 3 * dense + 58 * moe + 2 * tokens * float(a.vocab_size * a.hidden_size)
    assert flops_of(forward_cost(s, (seg,), f64(tokens))) == pytest.approx(expected, rel=1e-9)
