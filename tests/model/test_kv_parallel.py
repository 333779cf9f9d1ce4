"""KV-parallel decode (Helix, ``Design.kvp``): KV per GPU, replicated projections, the combine's
traffic, unchanged attention FLOPs, and finite gradients (dse/model/layer.py, memory.py, step.py).

Counts are checked on the ideal machines of ``tests.support`` (every efficiency 1, one peak),
where an op's time times the peak (or the bandwidth) is exactly its FLOPs (or bytes).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dse.model import default_runtime, make_design
from dse.model.design import bytes_per_element
from dse.model.layer import Segment, Setup, attention_core, kv_shards
from dse.model.memory import kv_bytes_per_sequence_gpu, weight_bytes_per_gpu
from dse.model.step import LSE_BYTES, attention_block, forward_cost, kvp_combine
from tests.support import arch, calibrated_efficiency, hardware, ideal_efficiency, ideal_hardware

KIMI = "kimi-k2"  # MLA: 64 heads, v_head_dim 128, 61 layers; the latent is one KV "head"
LLAMA = "llama3.1-70b"  # GQA: 64 query heads, 8 KV heads of 128


def f64(x):
    return jnp.asarray(float(x), dtype=jnp.float64)


def setup(model: str, hw=None, eff=None, **design) -> Setup:
    return Setup(
        arch(model),
        hw if hw is not None else ideal_hardware(),
        eff if eff is not None else ideal_efficiency(),
        default_runtime(),
        make_design(**{"framework": 0.0, **design}),  # static: no host work in the step
    )


@pytest.mark.parametrize("kvp", [1.0, 2.0, 4.0, 8.0])
def test_mla_kv_per_gpu_falls_as_one_over_kvp(kvp):
    # TP alone replicates the MLA latent on every rank; each KV slice holds 1/kvp of it.
    context = f64(372_000.0)
    plain = kv_bytes_per_sequence_gpu(setup(KIMI, tp=8.0, kv_bits=8.0), context)
    split = kv_bytes_per_sequence_gpu(setup(KIMI, tp=8.0, kv_bits=8.0, kvp=kvp), context)
    assert float(plain) == pytest.approx(61 * 372_000 * 576)  # FP8 latent + RoPE key
    assert float(plain / split) == pytest.approx(kvp, rel=1e-12)


def test_gqa_kv_parallel_removes_only_the_replication():
    a = arch(LLAMA)
    # tp 16 over 8 KV heads stores each head twice; two KV slices of tp 8 store it once.
    assert float(kv_shards(a, f64(16.0))) == 8.0
    assert float(kv_shards(a, f64(16.0), f64(2.0))) == 16.0
    # tp 8 already splits by KV head: moving a factor 2 from heads to sequence saves nothing.
    assert float(kv_shards(a, f64(8.0), f64(2.0))) == float(kv_shards(a, f64(8.0))) == 8.0


def test_attention_flops_per_gpu_stay_while_kv_reads_split():
    seg = (Segment(f64(4.0), f64(1.0), f64(100_000.0)),)
    compute = ideal_hardware(tflops=1000.0)  # enormous bandwidth: time = FLOPs / peak
    flops = [
        float(attention_core(setup(KIMI, hw=compute, tp=8.0, kvp=k), seg, False).total)
        for k in (1.0, 4.0)
    ]
    assert flops[1] == pytest.approx(flops[0], rel=1e-12)  # 4x the heads over 1/4 of the keys
    memory = ideal_hardware(tflops=1e12, tbs=1.0)  # 1 TB/s, FLOPs free: time x 1e12 = bytes
    nbytes = {
        k: float(attention_core(setup(KIMI, hw=memory, tp=8.0, kvp=k), seg, False).total) * 1e12
        for k in (1.0, 4.0)
    }
    kv = 4 * 100_001 * 576 * 2.0  # BF16 latent of every cached position, whole on each rank
    # Read q, write o for the rank's 8 heads (of the catalog's head_dim; 0 for MLA models).
    q_bytes = 4 * (64 / 8) * float(arch(KIMI).head_dim) * 2.0 * 2.0
    assert nbytes[1.0] == pytest.approx(kv + q_bytes, rel=1e-12)
    assert nbytes[4.0] == pytest.approx(kv / 4 + 4 * q_bytes, rel=1e-12)


def test_qkv_projections_are_replicated_over_kv_slices():
    a = arch(KIMI)
    s1, s4 = setup(KIMI, tp=8.0, weight_bits=4.0), setup(KIMI, tp=8.0, weight_bits=4.0, kvp=4.0)
    no_draft = jnp.asarray(False)
    extra = float(weight_bytes_per_gpu(s4, no_draft) - weight_bytes_per_gpu(s1, no_draft))
    # Everything but the output projection is split tp / kvp = 2 ways instead of 8.
    qkv = float(a.attention_params_per_layer() - a.attention_output_params())
    per_elem = float(bytes_per_element(f64(4.0)))
    assert extra == pytest.approx(61 * qkv * (1 / 2 - 1 / 8) * per_elem, rel=1e-9)
    assert float(a.attention_output_params()) == 64 * 128 * 7168  # heads x v_head_dim x hidden


def test_combine_traffic_is_counted_and_independent_of_context():
    link_gbs = 100.0
    hw = ideal_hardware(scaleup_bandwidth_gbs=link_gbs, scaleup_domain=72.0)
    eff = ideal_efficiency()  # link efficiency 1, collective latency 1 us
    tokens = 32.0
    s = setup(KIMI, hw=hw, eff=eff, tp=8.0, kvp=4.0)
    # Each GPU holds partials of 64 / (8 / 4) = 32 heads: BF16 outputs of 128 + an FP32 LSE,
    # and sends 3/4 of them to the other three slices.
    sent = tokens * 32 * (128 * 2.0 + LSE_BYTES) * 3 / 4
    expected = sent / (link_gbs * 1e9) + float(eff.collective_latency_us) * 1e-6
    combine = kvp_combine(s, f64(tokens))
    assert float(combine.network) == pytest.approx(expected, rel=1e-12)
    assert float(kvp_combine(setup(KIMI, hw=hw, tp=8.0), f64(tokens)).total) == 0.0
    # The attention half of every layer pays it once, at any context length.
    added = []
    for past in (1_000.0, 300_000.0):
        seg = (Segment(f64(tokens), f64(1.0), f64(past)),)
        comm = [
            float(attention_block(setup(KIMI, hw=hw, tp=8.0, kvp=k), seg, f64(tokens)).comm.total)
            for k in (1.0, 4.0)
        ]
        added.append(comm[1] - comm[0])
    assert added[0] == pytest.approx(61 * float(combine.total), rel=1e-12)
    assert added[1] == pytest.approx(added[0], rel=1e-12)


def test_long_context_decode_gets_faster_with_kv_slices_on_a_real_chip():
    # B200, Kimi-K2 NVFP4 at tp 8 and batch 16 with 300K tokens of context: without KV
    # parallelism each rank streams the whole FP8 latent (16 x 300K x 61 x 576 B, 169 GB) per
    # step, more than its weights; the attention FLOPs and the expert weights stay.
    hw, eff = hardware("b200"), calibrated_efficiency("b200")
    seg = (Segment(f64(16.0), f64(1.0), f64(300_000.0)),)

    def step(kvp: float) -> float:
        s = setup(KIMI, hw=hw, eff=eff, tp=8.0, kvp=kvp, weight_bits=4.0, kv_bits=8.0)
        return float(forward_cost(s, seg, f64(16.0)).total)

    times = [step(k) for k in (1.0, 2.0, 8.0)]
    assert times[0] > times[1] > times[2]
    assert times[0] / times[2] > 2.0


@pytest.mark.parametrize("kvp", [1.0, 2.0, 8.0])
def test_gradients_stay_finite(kvp):
    hw, eff = hardware("b200"), calibrated_efficiency("b200")
    base = setup(KIMI, hw=hw, eff=eff, tp=8.0, kvp=kvp, weight_bits=4.0, kv_bits=8.0)

    def step(x):
        seqs, past, k = x
        s = base._replace(design=eqx.tree_at(lambda d: d.kvp, base.design, k))
        return forward_cost(s, (Segment(seqs, f64(1.0), past),), seqs).total

    grads = jax.grad(step)(jnp.array([16.0, 100_000.0, kvp]))
    assert np.isfinite(np.asarray(grads)).all()
    assert float(grads[1]) > 0.0  # more context, slower step
