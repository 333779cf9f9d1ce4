"""SRAM-first chips: capacity rule (chips per model) and Groq v1's public decode speeds."""

import jax.numpy as jnp
import pytest

from dse.calibration import Calibration
from dse.model import evaluate, make_design
from dse.model.sram import chips_needed, racks_needed


def _f(x):
    return jnp.asarray(float(x), dtype=jnp.float64)


@pytest.mark.parametrize(
    "model, hardware, bits, expected",
    [
        # workloads.md §8: Llama-2-70B FP16 needs >= 609 LPU-v1 chips by capacity alone,
        # a 70B FP8 model ~305 LPU-v1 chips, a 1T-parameter FP8 model ~2,000 Groq 3 LPUs.
        ("llama2-70b", "groq_lpu", 16, 609),
        ("llama2-70b", "groq_lpu", 8, 305),
        ("llama3.1-70b", "groq3_lpx", 8, 145),  # 70.6 GB / 0.49 GB usable + BF16 embeddings
        ("kimi-k2", "groq3_lpx", 8, 2000),
    ],
)
def test_chips_needed_matches_capacity_arithmetic(catalog, model, hardware, bits, expected):
    arch = catalog.model(model).arch
    hw = catalog.accelerator(hardware).hw
    chips = float(chips_needed(arch, hw, _f(bits), _f(8), _f(0)))
    assert abs(chips / expected - 1) <= 0.06, chips


def test_one_trillion_parameter_model_needs_about_eight_lpx_racks(catalog):
    # hardware.md §9: "a 1 T-parameter FP8 model needs about 8 LPX racks for weights alone".
    arch, hw = catalog.model("kimi-k2").arch, catalog.accelerator("groq3_lpx").hw
    chips = chips_needed(arch, hw, _f(8), _f(8), _f(0))
    assert 8 <= float(racks_needed(chips, hw)) <= 9
    # the FFN half alone (attention-FFN disaggregation) is nearly all of it for an MoE model
    ffn = chips_needed(arch, hw, _f(8), _f(8), _f(0), ffn_only=True)
    assert 0.9 * float(chips) <= float(ffn) < float(chips)


def test_kv_cache_of_a_long_agentic_context_costs_chips(catalog):
    # 400K tokens of Kimi-K2 MLA KV at FP8 (~40 KB/token) is ~16 GB: ~33 more Groq 3 LPUs.
    arch, hw = catalog.model("kimi-k2").arch, catalog.accelerator("groq3_lpx").hw
    base = float(chips_needed(arch, hw, _f(8), _f(8), _f(0)))
    long = float(chips_needed(arch, hw, _f(8), _f(8), _f(400_000)))
    assert 25 <= long - base <= 45


@pytest.mark.parametrize(
    "model, tp, pp, measured",
    [
        # Groq v1 public speeds at batch 1 (workloads.md §8, Feb 2024). Llama-2-7B is stood in
        # for by Llama-3.1-8B (same 32-layer, 4096-wide shape; larger vocabulary).
        ("llama2-70b", 8, 72, 300.0),
        ("llama3.1-8b", 8, 16, 750.0),
        ("mixtral-8x7b", 16, 32, 480.0),
    ],
)
def test_groq_v1_decode_speed_in_sample_within_25_percent(catalog, model, tp, pp, measured):
    """IN-SAMPLE: the LPU's per-layer synchronisation (``layer_sync_us``, ``moe_layer_sync_us``
    in efficiency.GENERATION_PRIOR) was set by hand from these three public speeds, so this
    checks the model's structure reproduces them with one shared value each, not accuracy."""
    cal = Calibration.load()
    arch, hw = catalog.model(model).arch, catalog.accelerator("groq_lpu").hw
    d = make_design(tp=tp, pp=pp, weight_bits=8, kv_bits=8, phase=1, batch=1, isl=2048, osl=512)
    m = evaluate(arch, hw, cal.efficiency, cal.runtime, d)
    assert float(m.feasible) == 1.0
    assert abs(float(m.tok_s_user) / measured - 1) <= 0.25


def test_sram_pool_without_enough_chips_is_infeasible_with_reason(catalog):
    cal = Calibration.load()
    arch, hw = catalog.model("llama2-70b").arch, catalog.accelerator("groq_lpu").hw
    d = make_design(tp=8, pp=8, weight_bits=8, kv_bits=8, phase=1, batch=1, isl=2048, osl=512)
    m = evaluate(arch, hw, cal.efficiency, cal.runtime, d)
    assert float(m.feasible) == 0.0 and float(m.reason) == 1.0  # weights exceed memory
