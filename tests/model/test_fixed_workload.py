"""One model path: ``dse predict`` / calibration rows (the instance model) are the search's system
model on a fixed-length workload (``dse.model.fixed_workload``).

* The serving core (``serve_fixed``: TPOT, open-loop TTFT, request rate) equals
  ``evaluate_system`` (with its rate root solve) on the same instance's system design and
  fixed-length profile, to 1e-6 relative, on random aggregated and disaggregated designs.
* The closed-loop benchmark clients that ``dse predict`` puts on top change nothing where they
  should not: aggregated below the batch cap, TTFT, TPOT and throughput are the system's.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dse.catalog.costs import load_cost_params
from dse.model.batched import evaluate_many
from dse.model.fixed_workload import fixed_workload, instance_system, no_host, serve_fixed
from dse.model.serving import tokens_per_step
from dse.model.system import evaluate_system
from dse.model.system_solve import PREFILL_UTILIZATION
from tests.support import calibration, designs, random_rows, tables

REL = 1e-6


def _rows(n: int, seed: int, mode: float) -> list[dict]:
    rows = []
    # Half the rows with a dataset's length spread (conf/dataset/), so both paths read it.
    spread = np.random.default_rng(seed + 1000).uniform([0, 0, -1], [1, 2, 1], size=(n, 3))
    spread[::2] = 0.0
    for r, (isl_cv, osl_cv, corr) in zip(random_rows(n, seed), spread):
        r = dict(r, phase=2.0, mode=mode, spec_tokens_per_step=0.0)  # tau from the acceptance
        r.update(isl_cv=isl_cv, osl_cv=osl_cv, length_corr=corr)
        if mode == 1.0:
            r["decode_gpus"] = max(r["decode_gpus"], r["tp"] * r["pp"] * r["dp"])
            r["prefill_gpus"] = max(r["prefill_gpus"], 1.0)
        rows.append(r)
    return rows


@jax.jit
def _both(archs, hws, eff, rt, cost, mi, hi, d):
    def one(m, h, design):
        arch = jax.tree.map(lambda x: x[m], archs)
        hw = jax.tree.map(lambda x: x[h], hws)
        tau = tokens_per_step(design, rt.spec_acceptance)
        served, _, _ = serve_fixed(
            arch, hw, eff, rt, design, tau, prefill_utilization=PREFILL_UTILIZATION
        )
        profile = fixed_workload(design, rt.spec_acceptance)
        sm = evaluate_system(
            arch, hw, hw, hw, no_host(), eff, rt, cost, profile, instance_system(design),
            derivatives=False,
        )  # fmt: skip
        core = jnp.stack([served.ttft, served.tpot, served.rate])
        system = jnp.stack([sm.ttft_ms / 1e3, sm.tpot_ms / 1e3, sm.requests_s])
        return core, system

    return jax.vmap(one)(mi, hi, d)


def _inputs(rows):
    d = designs(rows)
    mi = np.array([r["mi"] for r in rows], dtype=np.int32)
    hi = np.array([r["hi"] for r in rows], dtype=np.int32)
    return mi, hi, d


@pytest.mark.parametrize("mode", [0.0, 1.0], ids=["aggregated", "disaggregated"])
def test_predict_core_is_the_system_model_on_a_fixed_workload(mode):
    rows = _rows(96, seed=7 + int(mode), mode=mode)
    cal = calibration()
    archs, hws = tables()
    mi, hi, d = _inputs(rows)
    core, system = _both(
        archs, hws, cal.efficiency, cal.runtime, load_cost_params("default"), mi, hi,
        jax.tree.map(jnp.asarray, d),
    )  # fmt: skip
    core, system = np.asarray(core), np.asarray(system)
    finite = np.isfinite(core).all(axis=1) & (core[:, 2] > 0)
    assert finite.sum() > 48  # most random designs serve something
    np.testing.assert_allclose(core[finite], system[finite], rtol=REL)


def test_predict_matches_the_system_model_below_the_batch_cap():
    """Aggregated serving with fewer clients than fit: no client queues, so dse predict's TTFT,
    TPOT and throughput are the system model's."""
    cal = calibration()
    archs, hws = tables()
    # 96 rows, as in the test above: the compiled pair of paths is reused.
    rows = [dict(r, concurrency=float(min(max(r["concurrency"], 1.0), 16.0)))
            for r in _rows(96, seed=3, mode=0.0)]  # fmt: skip
    mi, hi, d = _inputs(rows)
    m = evaluate_many(archs, hws, cal.efficiency, cal.runtime, mi, hi, d)
    ok = (np.asarray(m.feasible) > 0) & (np.asarray(m.max_batch) >= np.asarray(d.concurrency))
    assert ok.sum() >= 8
    core, system = _both(
        archs, hws, cal.efficiency, cal.runtime, load_cost_params("default"), mi, hi,
        jax.tree.map(jnp.asarray, d),
    )  # fmt: skip
    system = np.asarray(system)[ok]
    gpus = (d.tp * d.pp * d.dp)[ok]
    osl = np.maximum(d.osl[ok], 1.0)
    np.testing.assert_allclose(np.asarray(m.ttft_ms)[ok] / 1e3, system[:, 0], rtol=REL)
    np.testing.assert_allclose(np.asarray(m.tpot_ms)[ok] / 1e3, system[:, 1], rtol=REL)
    np.testing.assert_allclose(np.asarray(m.tok_s_gpu)[ok] * gpus, system[:, 2] * osl, rtol=REL)


def test_closed_loop_clients_beyond_the_cap_wait_in_the_queue():
    """More clients than fit: TPOT and throughput stay those of the full batch, TTFT grows by
    the queue wait (extra clients / request rate), linearly in the excess."""
    cal = calibration()
    archs, hws = tables()
    base = dict(mi=0, hi=1, tp=1.0, weight_bits=8.0, kv_bits=8.0, isl=8192.0, osl=1024.0)
    probe = evaluate_many(
        archs, hws, cal.efficiency, cal.runtime, np.array([0]), np.array([1]),
        designs([dict(base, concurrency=0.0)]),
    )  # fmt: skip
    cap = float(probe.max_batch[0])
    assert cap > 4
    rows = [dict(base, concurrency=cap * f) for f in (1.0, 2.0, 3.0)]
    m = evaluate_many(
        archs, hws, cal.efficiency, cal.runtime, np.zeros(3, np.int32), np.ones(3, np.int32),
        designs(rows),
    )  # fmt: skip
    tpot, tok, ttft = (np.asarray(x) for x in (m.tpot_ms, m.tok_s_gpu, m.ttft_ms))
    np.testing.assert_allclose(tpot, tpot[0], rtol=1e-9)
    np.testing.assert_allclose(tok, tok[0], rtol=1e-9)
    rate = tok[0] / 1024.0  # requests/s on one GPU
    np.testing.assert_allclose(np.diff(ttft) / 1e3, cap / rate, rtol=1e-6)


@pytest.mark.parametrize("mode", [0.0, 1.0], ids=["aggregated", "disaggregated"])
def test_serving_rows_reuse_their_cached_prefix(mode):
    """A resident prefix is a prompt-cache hit of prefix / isl: less to prefill, so a shorter
    TTFT and no lower throughput."""
    cal = calibration()
    archs, hws = tables()
    base = dict(
        mi=1, hi=2, tp=4.0, weight_bits=8.0, kv_bits=8.0, phase=2.0, mode=mode, isl=16000.0,
        osl=500.0, concurrency=8.0, prefill_gpus=4.0, decode_gpus=4.0,
    )  # fmt: skip
    rows = [dict(base, prefix=p) for p in (0.0, 14000.0)]
    m = evaluate_many(
        archs, hws, cal.efficiency, cal.runtime, np.full(2, 1, np.int32), np.full(2, 2, np.int32),
        designs(rows),
    )  # fmt: skip
    ttft, tok = np.asarray(m.ttft_ms), np.asarray(m.tok_s_gpu)
    assert np.all(np.asarray(m.feasible) == 1.0)
    assert ttft[1] < 0.5 * ttft[0]
    assert tok[1] >= tok[0] * (1 - 1e-9)


def test_disaggregated_clients_spread_over_the_decode_workers():
    """Four TP1 decode workers and 64 clients, prefill to spare: each worker decodes 16
    sequences, so TPOT is the decode step of a batch of 16 (the phase-isolated decode row)."""
    cal = calibration()
    archs, hws = tables()
    common = dict(mi=0, hi=0, tp=1.0, weight_bits=8.0, kv_bits=8.0, isl=2000.0, osl=500.0)
    rows = [
        dict(common, phase=2.0, mode=1.0, concurrency=64.0, prefill_gpus=8.0, decode_gpus=4.0),
        dict(common, phase=1.0, batch=16.0),
    ]
    m = evaluate_many(
        archs, hws, cal.efficiency, cal.runtime, np.zeros(2, np.int32), np.zeros(2, np.int32),
        designs(rows),
    )  # fmt: skip
    assert np.all(np.asarray(m.feasible) == 1.0)
    assert float(m.batch[0]) == pytest.approx(64.0, rel=1e-9)
    assert float(m.tpot_ms[0]) == pytest.approx(float(m.tpot_ms[1]), rel=1e-9)


def _serve(rows, runtime=None):
    cal = calibration()
    archs, hws = tables()
    mi = np.array([r["mi"] for r in rows], np.int32)
    hi = np.array([r["hi"] for r in rows], np.int32)
    rt = cal.runtime if runtime is None else runtime
    return evaluate_many(archs, hws, cal.efficiency, rt, mi, hi, designs(rows))


@pytest.mark.parametrize("mode", [0.0, 1.0], ids=["aggregated", "disaggregated"])
def test_an_in_process_harness_skips_only_the_request_path(mode):
    """MLPerf LoadGen / trtllm-bench rows (harness 1) reach the engine without its API server:
    TTFT loses exactly the framework's request path, TPOT and throughput do not move."""
    base = dict(
        mi=0, hi=0, tp=1.0, weight_bits=8.0, kv_bits=8.0, phase=2.0, mode=mode, isl=2000.0,
        osl=500.0, concurrency=4.0, prefill_gpus=2.0, decode_gpus=1.0, framework=1.0,
    )  # fmt: skip
    m = _serve([dict(base, harness=0.0), dict(base, harness=1.0)])
    request = float(calibration().runtime.fw_request_ms[1])
    assert request > 1.0
    ttft = np.asarray(m.ttft_ms)
    assert ttft[0] - ttft[1] == pytest.approx(request, rel=1e-9)
    np.testing.assert_allclose(np.asarray(m.tpot_ms)[1], np.asarray(m.tpot_ms)[0], rtol=1e-12)
    np.testing.assert_allclose(np.asarray(m.tok_s_gpu)[1], np.asarray(m.tok_s_gpu)[0], rtol=1e-12)


def _no_balance(rt, wait_iters=0.0):
    rt = eqx.tree_at(lambda r: r.adp_timeout_iters, rt, jnp.asarray(0.0))
    return eqx.tree_at(lambda r: r.adp_batching_wait_iters, rt, jnp.asarray(wait_iters))


def test_trtllm_attention_dp_balance_holds_prompts_half_a_round():
    """TensorRT-LLM with attention DP (dp 8) holds a prompt until every rank has one: half of
    the (dp - 1) / (requests/s of the worker) it takes to gather them, at most half of
    ``adp_timeout_iters`` iterations; ``adp_batching_wait_iters`` iterations on top. TPOT and
    throughput do not move (the wait is outside the engine's steps)."""
    cal = calibration()
    # DeepSeek-V3 on 8 B200, attention DP 8 x EP 8; 64 clients: every rank runs sequences.
    rows = [
        dict(mi=3, hi=2, tp=1.0, dp=8.0, ep=8.0, weight_bits=8.0, kv_bits=8.0, isl=1024.0,
             osl=1024.0, concurrency=c, framework=1.0)
        for c in (64.0, 512.0)
    ]  # fmt: skip
    on = _serve(rows)
    off = _serve(rows, _no_balance(cal.runtime))
    two = _serve(rows, _no_balance(cal.runtime, wait_iters=2.0))
    np.testing.assert_allclose(np.asarray(on.tpot_ms), np.asarray(off.tpot_ms), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(on.tok_s_gpu), np.asarray(off.tok_s_gpu), rtol=1e-12)
    iteration = np.asarray(off.tpot_ms) / 1e3  # no drafting: one token per iteration
    rate = np.asarray(off.tok_s_gpu) * 8.0 / 1024.0  # requests/s of the one worker
    timeout = float(cal.runtime.adp_timeout_iters)
    expected = 0.5 * np.minimum(7.0 / rate, timeout * iteration)
    held = (np.asarray(on.ttft_ms) - np.asarray(off.ttft_ms)) / 1e3
    np.testing.assert_allclose(held, expected, rtol=1e-6)
    assert held[0] > held[1] > 0  # more load: the ranks fill faster
    extra = (np.asarray(two.ttft_ms) - np.asarray(off.ttft_ms)) / 1e3
    np.testing.assert_allclose(extra, 2.0 * iteration, rtol=1e-6)


@pytest.mark.parametrize(
    "change",
    [dict(framework=3.0), dict(dp=1.0, tp=8.0), dict(concurrency=4.0)],
    ids=["sglang", "no-attention-dp", "a-rank-without-sequences"],
)
def test_no_balance_wait_without_trtllm_attention_dp_on_busy_ranks(change):
    cal = calibration()
    row = dict(
        mi=3, hi=2, tp=1.0, dp=8.0, ep=8.0, weight_bits=8.0, kv_bits=8.0, isl=1024.0,
        osl=1024.0, concurrency=64.0, framework=1.0,
    )  # fmt: skip
    row.update(change)
    on = _serve([row])
    off = _serve([row], _no_balance(cal.runtime))
    np.testing.assert_allclose(np.asarray(on.ttft_ms), np.asarray(off.ttft_ms), rtol=1e-12)
