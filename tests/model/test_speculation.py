"""Speculative decoding: the expected-tokens formula, method acceptance, batch erosion."""

import jax.numpy as jnp
import numpy as np
import pytest

from dse.calibration import Calibration
from dse.model import evaluate, make_design
from dse.model.speculation import expected_tokens_per_step, method_acceptance


def _f(x):
    return jnp.asarray(float(x), dtype=jnp.float64)


@pytest.mark.parametrize(
    "alpha, k, tau",
    # workloads.md §3 (derived from Leviathan et al.): tau = (1 - a^(k+1)) / (1 - a)
    [(0.9, 1, 1.9), (0.8, 4, 3.3616), (0.75, 4, 3.0508), (0.7, 3, 2.533), (0.0, 3, 1.0)],
)
def test_expected_tokens_per_step(alpha, k, tau):
    assert float(expected_tokens_per_step(_f(alpha), _f(k))) == pytest.approx(tau, rel=1e-3)


def test_expected_tokens_limits_and_monotonicity():
    assert float(expected_tokens_per_step(_f(1.0), _f(3))) == 4.0  # every draft accepted
    assert float(expected_tokens_per_step(_f(0.8), _f(0))) == 1.0  # no drafts
    taus = [float(expected_tokens_per_step(_f(a), _f(4))) for a in np.linspace(0, 1, 11)]
    assert all(b >= a for a, b in zip(taus, taus[1:]))


def test_method_acceptance_picks_the_workloads_value():
    per_method = jnp.asarray([0.8, 0.7, 0.6])
    got = [float(method_acceptance(_f(m), per_method)) for m in range(4)]
    assert got == [0.0, 0.8, 0.7, 0.6]


def _speedup(catalog, batch, k=3, model="llama3.1-70b"):
    cal = Calibration.load()
    arch, hw = catalog.model(model).arch, catalog.accelerator("h200_sxm").hw
    kw = dict(tp=4, weight_bits=8, kv_bits=8, phase=1, batch=batch, isl=1024, osl=256)
    base = evaluate(arch, hw, cal.efficiency, cal.runtime, make_design(**kw))
    spec = evaluate(
        arch, hw, cal.efficiency, cal.runtime, make_design(spec_k=k, spec_tokens_per_step=0, **kw)
    )
    return float(spec.tok_s_user) / float(base.tok_s_user)


def test_speculation_speedup_shrinks_as_batch_grows(catalog):
    # workloads.md §3: verification is nearly free while memory-bound, not once compute-bound;
    # EAGLE-3/MTP give ~1.8-2.4x at batch 1 and ~1.3-1.4x at batch 32-64.
    # Here (70B FP8, TP4 H200, 1K/256, k=3 at the default acceptance 0.75, tau 2.73):
    # 2.5x at batch 1, 1.7x at 64, ~1.0x at 512 -- erosion slower than the measured 1.3-1.4x at
    # 32-64 (a strict expected failure below), which also pays verification-kernel and tree
    # overheads the roofline does not see.
    s1, s64, s512 = (_speedup(catalog, b) for b in (1, 64, 512))
    assert s1 > s64 > s512
    assert 1.6 <= s1 <= 3.1
    assert s512 < 1.2


@pytest.mark.xfail(
    strict=True,
    reason="known miss: published MTP/EAGLE speed-ups at batch 32-64 are 1.3-1.4x "
    "(workloads.md §3); the model gives 2.1x at 32 and 1.7x at 64 (Llama-3.1-70B FP8, TP4 H200, "
    "k=3, acceptance 0.75): verification kernels, tree attention and acceptance falling with "
    "batch are not modelled. Flips when they are.",
)
def test_speculation_speedup_at_batch_32_to_64_matches_published(catalog):
    for batch in (32, 64):
        assert 1.2 <= _speedup(catalog, batch) <= 1.5
