"""Kernel counts per layer type, the fixed time they cost, the framework's host work, and the
MoE collectives chosen by the attention layout: each against a hand count."""

import equinox as eqx
import jax.numpy as jnp
import pytest

from dse.model import make_design
from dse.model.efficiency import FRAMEWORKS, default_runtime
from dse.model.kernels import kernels_per_step
from dse.model.layer import Segment, Setup
from dse.model.roofline import Cost
from dse.model.step import forward_cost, host_overlapped, moe_communication
from tests.support import arch, hardware, ideal_efficiency, ideal_hardware

# Hand counts (kernels.py's docstring): GQA attention 5, MLA attention 10, dense MLP 4,
# MoE 8 (+3 for shared experts), 4 per step.
HAND = {
    "llama3.1-8b": 32 * (5 + 4) + 4,  # 32 dense GQA layers
    "llama3.1-70b": 80 * (5 + 4) + 4,
    "deepseek-v3": 61 * 10 + 3 * 4 + 58 * (8 + 3) + 4,  # 3 dense + 58 MoE layers, 1 shared
    "mixtral-8x7b": 32 * (5 + 8) + 4,  # every layer MoE, no shared expert
    "qwen3-30b-a3b": 48 * (5 + 8) + 4,
    "kimi-k2": 61 * 10 + 1 * 4 + 60 * (8 + 3) + 4,  # DeepSeek-V3 shape with 1 dense layer
}


@pytest.mark.parametrize("model", sorted(HAND))
def test_kernels_per_step_match_hand_counts(model):
    assert float(kernels_per_step(arch(model))) == HAND[model]


def _setup(model, eff, framework=0.0, rt=None, **design):
    return Setup(
        arch(model),
        ideal_hardware(1000.0),
        eff,
        rt if rt is not None else default_runtime(),
        make_design(framework=framework, **design),
    )


@pytest.mark.parametrize("model", ["llama3.1-8b", "deepseek-v3"])
def test_every_kernel_pays_its_fixed_time_once(model):
    """A forward pass costs exactly kernels x kernel_us more than on a machine with none."""
    seg = Segment(jnp.asarray(4.0), jnp.asarray(1.0), jnp.asarray(1000.0))
    base = forward_cost(_setup(model, ideal_efficiency()), (seg,), seg.tokens)
    slow = forward_cost(_setup(model, ideal_efficiency(kernel_us=3.0)), (seg,), seg.tokens)
    extra = float(slow.total - base.total)
    assert extra == pytest.approx(HAND[model] * 3e-6, rel=1e-9)
    assert float(slow.overhead - base.overhead) == pytest.approx(extra, rel=1e-9)


def test_a_framework_launches_kernel_factor_times_the_fused_kernels():
    rt = default_runtime()
    rt = eqx.tree_at(lambda r: r.fw_kernel_factor, rt, jnp.asarray([1.0, 2.5, 1.0, 1.0]))
    rt = eqx.tree_at(lambda r: r.fw_step_ms, rt, jnp.zeros(len(FRAMEWORKS)))
    rt = eqx.tree_at(lambda r: r.fw_seq_us, rt, jnp.zeros(len(FRAMEWORKS)))
    eff = ideal_efficiency(kernel_us=2.0)
    seg = Segment(jnp.asarray(1.0), jnp.asarray(1.0), jnp.asarray(100.0))
    static = forward_cost(_setup("llama3.1-8b", eff, 0.0, rt), (seg,), seg.tokens)
    trt = forward_cost(_setup("llama3.1-8b", eff, 1.0, rt), (seg,), seg.tokens)
    assert float(trt.total - static.total) == pytest.approx(1.5 * HAND["llama3.1-8b"] * 2e-6)


@pytest.mark.parametrize(
    "gpu_ms, step_ms, seq_us, seqs, overlap",
    [(10.0, 1.0, 20.0, 64.0, 0.8), (1.0, 3.0, 0.0, 1.0, 0.9), (5.0, 0.5, 10.0, 8.0, 0.0)],
)
def test_host_work_overlaps_the_gpu_step_by_the_overlap_fraction(
    gpu_ms, step_ms, seq_us, seqs, overlap
):
    rt = default_runtime()
    put = lambda r, f, v: eqx.tree_at(f, r, jnp.asarray([0.0, v, 0.0, 0.0]))  # noqa: E731
    rt = put(rt, lambda r: r.fw_step_ms, step_ms)
    rt = put(rt, lambda r: r.fw_seq_us, seq_us)
    rt = put(rt, lambda r: r.fw_overlap, overlap)
    s = _setup("llama3.1-8b", ideal_efficiency(), 1.0, rt)
    z = jnp.asarray(0.0)
    gpu = Cost(jnp.asarray(gpu_ms * 1e-3), jnp.asarray(gpu_ms * 1e-3), z, z, z)
    host = step_ms * 1e-3 + seqs * seq_us * 1e-6
    want = gpu_ms * 1e-3 + host - overlap * min(gpu_ms * 1e-3, host)
    got = host_overlapped(s, gpu, jnp.asarray(seqs))
    assert float(got.total) == pytest.approx(want, rel=1e-12)
    # The static framework adds nothing at all.
    s0 = _setup("llama3.1-8b", ideal_efficiency(), 0.0, rt)
    assert float(host_overlapped(s0, gpu, jnp.asarray(seqs)).total) == gpu_ms * 1e-3


def test_tensor_parallel_attention_feeds_moe_by_all_reduce_not_all_to_all():
    """dp = 1: every rank holds every token after the attention all-reduce, so the MoE layer
    all-reduces its partial outputs over the group (one latency) and dispatches nothing;
    dp > 1 (DP attention): dispatch + combine (two all-to-all latencies) and no reduce."""
    eff = ideal_efficiency(collective_latency_us=7.0, a2a_latency_us=20.0)
    hw = hardware("b200")
    tokens = jnp.asarray(1.0)  # latency-bound: bytes ~ 0
    tp = Setup(arch("deepseek-v3"), hw, eff, default_runtime(),
               make_design(tp=8, ep=8, dp=1, weight_bits=4))  # fmt: skip
    dep = Setup(arch("deepseek-v3"), hw, eff, default_runtime(),
                make_design(tp=1, ep=8, dp=8, weight_bits=4))  # fmt: skip
    imb = jnp.asarray(1.0)
    t_tp = float(moe_communication(tp, tokens, imb).total) * 1e6
    t_dep = float(moe_communication(dep, tokens, imb).total) * 1e6
    assert t_tp == pytest.approx(7.0, rel=0.02)  # one all-reduce latency
    assert t_dep == pytest.approx(40.0, rel=0.02)  # dispatch + combine latencies


def test_pipeline_stages_add_one_activation_hand_off_each():
    """pp stages in sequence: (pp - 1) sends of tokens x hidden x 2 B over NVLink, each with
    its latency, on top of the same per-layer work (split over stages, run one after another)."""
    hw = hardware("h100_sxm")
    eff = ideal_efficiency(collective_latency_us=5.0, link_eff=0.8)
    seg = Segment(jnp.asarray(8.0), jnp.asarray(1.0), jnp.asarray(1000.0))

    def step(pp):
        s = Setup(arch("llama3.1-70b"), hw, eff, default_runtime(),
                  make_design(tp=2, pp=pp, framework=0.0))  # fmt: skip
        return float(forward_cost(s, (seg,), seg.tokens).network)

    hidden = float(arch("llama3.1-70b").hidden_size)
    one_send = 8.0 * hidden * 2.0 / (float(hw.scaleup_peer_bandwidth) * 0.8) + 5e-6
    assert step(4) - step(1) == pytest.approx(3.0 * one_send, rel=1e-9)


def test_a_draft_model_costs_k_small_forward_passes():
    """speculation.draft_model_cost: k sequential passes of a dense draft of draft_params_b
    billion parameters (TP-sharded like the target), each paying 24 layers x 9 kernels plus
    its LM head and sampling at kernel_us: hand-counted on a memory-bound ideal machine."""
    from dse.model.speculation import DRAFT_MODEL_LAYERS, draft_model_cost

    hw = ideal_hardware(1000.0, tbs=2.0)  # 2 TB/s: the 1B draft is memory-bound
    eff = ideal_efficiency(kernel_us=3.0)
    s = Setup(arch("llama3.1-70b"), hw, eff, default_runtime(),
              make_design(tp=2, weight_bits=8, framework=0.0))  # fmt: skip
    seg = Segment(jnp.asarray(1.0), jnp.asarray(4.0), jnp.asarray(1000.0))
    k, params_b = 3.0, 1.0
    cost = draft_model_cost(s, seg, jnp.asarray(k), jnp.asarray(params_b))
    width = float(arch("llama3.1-70b").hidden_size)
    weight_bytes = params_b * 1e9 / 2 * 1.0  # FP8, half on each of 2 TP ranks
    act_bytes = 1.0 * (width + width / 2) * 2.0
    per_pass = (weight_bytes + act_bytes) / 2e12 + (DRAFT_MODEL_LAYERS * 9 + 2) * 3e-6
    assert float(cost.total) == pytest.approx(k * per_pass, rel=1e-6)
