"""Gradients of the model: finite everywhere, and equal to central finite differences.

``jax.grad`` is taken of a function of a vector ``t`` of increments that rebuilds the hardware
and design pytrees with ``eqx.tree_at`` (``x_i + t_i``), for every continuous hardware field
and the continuous design fields. One compiled ``vmap(value_and_grad)`` per serving path runs
all the checks of this module (rows: finite-difference probes, gradient rows, a random grid).
It runs op by op (not under ``jax.jit``): compiling the reverse pass of the whole model costs
minutes on a small CPU, while eager ``vmap`` over a few hundred rows takes seconds.

The compiled functions are traced with ``finite_or`` (the model's last line of defence against
NaN/inf) switched off, so a non-finite value anywhere in the model shows up here instead of
being silently replaced by 0 (its docstring: "tests assert it is never needed").
"""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dse.model.serving as serving_module
from dse.model import METRIC_FIELDS, evaluate
from tests.support import (
    ACCELERATORS,
    MODELS,
    calibration,
    designs,
    metrics_matrix,
    random_rows,
    run,
    tables,
)

HW_FIELDS = (
    "bf16_tflops",
    "fp8_tflops",
    "fp4_tflops",
    "mem_bandwidth_tbs",
    "mem_capacity_gb",
    "scaleup_bandwidth_gbs",
    "scaleup_peer_bandwidth_gbs",  # switchless meshes (MI300X); 0 elsewhere (no FD there)
    "scaleout_bandwidth_gbit",
)
DESIGN_FIELDS = ("batch", "isl", "osl", "prefix", "concurrency", "spec_tokens_per_step")
FIELDS = HW_FIELDS + DESIGN_FIELDS
OUTPUTS = ("ttft_ms", "tpot_ms", "tok_s_gpu")
N = 256  # rows per call (fixed shapes: primitives compile once)
REL_STEP = 1e-6

PREFILL, DECODE, SERVE = 0.0, 1.0, 2.0


def path_of(row: dict) -> int:
    phase, mode = row.get("phase", SERVE), row.get("mode", 0.0)
    return 0 if phase == PREFILL else 1 if phase == DECODE else 3 if mode == 1.0 else 2


def _objective(t, w, archs, hws, eff, rt, mi, hi, design, *, path):
    arch = jax.tree.map(lambda x: x[mi], archs)
    hw = jax.tree.map(lambda x: x[hi], hws)
    hw = eqx.tree_at(
        lambda h: tuple(getattr(h, f) for f in HW_FIELDS),
        hw,
        tuple(getattr(hw, f) + t[i] for i, f in enumerate(HW_FIELDS)),
    )
    k = len(HW_FIELDS)
    design = eqx.tree_at(
        lambda d: tuple(getattr(d, f) for f in DESIGN_FIELDS),
        design,
        tuple(getattr(design, f) + t[k + i] for i, f in enumerate(DESIGN_FIELDS)),
    )
    m = evaluate(arch, hw, eff, rt, design, path=path)
    out = jnp.stack([getattr(m, f) for f in OUTPUTS])
    return jnp.dot(w, out), m


def _batched_value_and_grad(path: int):
    fn = jax.value_and_grad(functools.partial(_objective, path=path), has_aux=True)
    return jax.vmap(fn, in_axes=(0, 0, None, None, None, None, 0, 0, 0))


def _run_path(path: int, rows: list[dict], t: np.ndarray, w: np.ndarray):
    """(value [n], raw metrics [n, fields], grad [n, len(FIELDS)]) for rows of one path."""
    n = len(rows)
    assert 0 < n <= N
    pad = N - n
    rows = rows + [rows[0]] * pad
    t = np.concatenate([t, np.zeros((pad, t.shape[1]))])
    w = np.concatenate([w, np.zeros((pad, w.shape[1]))])
    archs, hws = tables()
    cal = calibration()
    mi = np.array(
        [r["mi"] if "mi" in r else MODELS.index(r["model"]) for r in rows], dtype=np.int32
    )
    hi = np.array(
        [r["hi"] if "hi" in r else ACCELERATORS.index(r["hw"]) for r in rows], dtype=np.int32
    )
    (value, m), grad = _batched_value_and_grad(path)(
        jnp.asarray(t),
        jnp.asarray(w),
        archs,
        hws,
        cal.efficiency,
        cal.runtime,
        mi,
        hi,
        designs(rows),
    )
    return np.asarray(value)[:n], metrics_matrix(m)[:n], np.asarray(grad)[:n]


def field_values(row: dict) -> np.ndarray:
    archs, hws = tables()
    hi = row["hi"] if "hi" in row else ACCELERATORS.index(row["hw"])
    d = designs([row])
    hw_vals = [float(getattr(hws, f)[hi]) for f in HW_FIELDS]
    return np.array(hw_vals + [float(getattr(d, f)[0]) for f in DESIGN_FIELDS])


# Representative designs for the finite-difference comparison. Values are generic (away from
# the kinks of min/max/where), so the model is differentiable there.
FD_DESIGNS = {
    "prefill-dense-tp4": dict(
        model="llama3.1-70b",
        hw="h100_sxm",
        tp=4,
        weight_bits=8,
        kv_bits=8,
        phase=PREFILL,
        batch=3,
        isl=3000,
        prefix=500,
        osl=200,
    ),
    "prefill-moe-dep8": dict(
        model="deepseek-v3",
        hw="b200",
        dp=8,
        ep=8,
        weight_bits=4,
        kv_bits=8,
        phase=PREFILL,
        batch=16,
        isl=4096,
        prefix=1024,
        osl=300,
    ),
    "decode-dense-spec": dict(
        model="llama3.1-70b",
        hw="h100_sxm",
        tp=4,
        weight_bits=8,
        kv_bits=8,
        phase=DECODE,
        batch=17,
        isl=2000,
        osl=500,
        prefix=100,
        spec_k=2,
        spec_tokens_per_step=2.3,
    ),
    "decode-moe-dep16": dict(
        model="deepseek-v3",
        hw="b200",
        dp=16,
        ep=16,
        weight_bits=4,
        kv_bits=8,
        phase=DECODE,
        batch=300,
        isl=1500,
        osl=700,
        prefix=200,
        spec_k=3,
        spec_tokens_per_step=2.6,
    ),
    "serve-dense-tp4": dict(
        model="llama3.1-70b",
        hw="h100_sxm",
        tp=4,
        weight_bits=8,
        kv_bits=8,
        phase=SERVE,
        concurrency=24,
        isl=2000,
        osl=500,
        prefix=300,
        spec_k=2,
        spec_tokens_per_step=2.3,
    ),
    "serve-moe-dep16": dict(
        model="deepseek-v3",
        hw="b200",
        dp=16,
        ep=16,
        weight_bits=4,
        kv_bits=8,
        phase=SERVE,
        concurrency=700,
        isl=3000,
        osl=800,
        prefix=1000,
    ),
    "serve-moe-queue": dict(
        model="mixtral-8x7b",
        hw="mi300x",
        tp=2,
        phase=SERVE,
        concurrency=5000,
        isl=4000,
        osl=1000,
        prefix=10,
    ),
    "disagg-moe-dep16": dict(
        model="deepseek-v3",
        hw="gb200",
        dp=16,
        ep=16,
        weight_bits=4,
        kv_bits=8,
        phase=SERVE,
        mode=1.0,
        concurrency=2048,
        isl=8192,
        osl=1024,
        prefix=50,
        prefill_gpus=16,
        decode_gpus=16,
    ),
    "disagg-dense-tp8": dict(
        model="llama3.1-70b",
        hw="h200_sxm",
        tp=8,
        weight_bits=8,
        kv_bits=8,
        phase=SERVE,
        mode=1.0,
        concurrency=100,
        isl=4000,
        osl=500,
        prefix=500,
        prefill_gpus=8,
        decode_gpus=16,
        spec_k=1,
        spec_tokens_per_step=1.6,
    ),
}

# Corner cases that must still have finite gradients (no finite-difference check: kinks).
CORNERS = [
    dict(
        model="llama3.1-405b",
        hw="h100_sxm",
        phase=p,
        mode=mode,
        batch=b,
        concurrency=c,
        prefill_gpus=1,
        decode_gpus=1,
    )
    for p, mode in ((PREFILL, 0.0), (DECODE, 0.0), (SERVE, 0.0), (SERVE, 1.0))
    for b, c in ((1, 1), (0, 0))
] + [
    dict(model="llama3.1-8b", hw="h100_sxm", phase=DECODE, batch=0),  # saturating decode
    dict(
        model="llama3.1-8b", hw="h100_sxm", phase=SERVE, concurrency=0, spec_k=3
    ),  # acceptance formula
    dict(
        model="llama3.1-8b", hw="gb200", phase=SERVE, mode=1.0, prefill_gpus=0, decode_gpus=0
    ),  # pools missing
    dict(model="llama3.1-70b", hw="h100_sxm", phase=DECODE, batch=1e6),  # KV far beyond memory
    dict(model="llama3.1-8b", hw="mi300x", phase=PREFILL, batch=1, isl=1, osl=1),
    dict(
        model="gpt-oss-120b",
        hw="h100_sxm",
        weight_bits=4,
        phase=SERVE,
        concurrency=0,
        isl=200000,
        osl=1,
    ),
    dict(
        model="qwen3-235b-a22b",
        hw="b200",
        dp=8,
        ep=8,
        phase=SERVE,
        mode=1.0,
        concurrency=0,
        prefill_gpus=3,
        decode_gpus=8,
    ),
]


@pytest.fixture(scope="module")
def results():
    """Run every row of this module, grouped by path, with ``finite_or`` disabled."""
    jobs = []  # (kind, key, row, t, w)
    for name, row in FD_DESIGNS.items():
        x = field_values(row)
        for k in range(len(OUTPUTS)):
            jobs.append(("grad", (name, k), row, np.zeros(len(FIELDS)), np.eye(len(OUTPUTS))[k]))
        for i in range(len(FIELDS)):
            h = REL_STEP * (abs(x[i]) if x[i] != 0 else 1.0)
            for sign in (1.0, -1.0):
                jobs.append(
                    (
                        "fd",
                        (name, i, sign, h),
                        row,
                        sign * h * np.eye(len(FIELDS))[i],
                        np.zeros(len(OUTPUTS)),
                    )
                )
    for j, row in enumerate(CORNERS):
        jobs.append(("corner", j, row, np.zeros(len(FIELDS)), np.ones(len(OUTPUTS))))
    grid = random_rows(200, seed=0)
    for j, row in enumerate(grid):
        jobs.append(("grid", j, row, np.zeros(len(FIELDS)), np.ones(len(OUTPUTS))))

    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(serving_module, "finite_or", lambda x, fallback: x)
        for path in range(4):
            mine = [job for job in jobs if path_of(job[2]) == path]
            value, metrics, grad = _run_path(
                path,
                [j[2] for j in mine],
                np.stack([j[3] for j in mine]),
                np.stack([j[4] for j in mine]),
            )
            for n, job in enumerate(mine):
                out[(job[0], job[1])] = (value[n], metrics[n], grad[n])
    return dict(out=out, grid=grid)


def test_gradients_match_central_differences(results):
    out = results["out"]
    failures = []
    checked = 0
    for name, row in FD_DESIGNS.items():
        x = field_values(row)
        for k, output in enumerate(OUTPUTS):
            _, m0, grad = out[("grad", (name, k))]
            f0 = m0[METRIC_FIELDS.index(output)]
            for i, field in enumerate(FIELDS):
                if x[i] == 0.0:
                    continue  # e.g. fp4 on Hopper: a kink (falls back to BF16), no FD there
                h = REL_STEP * abs(x[i])
                plus = out[("fd", (name, i, 1.0, h))][1][METRIC_FIELDS.index(output)]
                minus = out[("fd", (name, i, -1.0, h))][1][METRIC_FIELDS.index(output)]
                fd = (plus - minus) / (2 * h)
                # compare elasticities (d f / d log x) so every field has the same units
                e_fd, e_ad = fd * x[i], grad[i] * x[i]
                checked += 1
                if not abs(e_fd - e_ad) <= 1e-4 * abs(e_ad) + 1e-7 * abs(f0):
                    failures.append(
                        f"{name} d{output}/d{field}: autodiff {grad[i]:.6g}, finite diff {fd:.6g}"
                    )
    assert not failures, "\n".join(failures)
    assert checked > 250


def test_gradients_are_not_trivially_zero(results):
    """Each field moves some output of some representative design (the checks above bite)."""
    out = results["out"]
    moved = np.zeros(len(FIELDS), dtype=bool)
    for name in FD_DESIGNS:
        for k in range(len(OUTPUTS)):
            grad = out[("grad", (name, k))][2]
            moved |= np.abs(grad) > 0
    assert moved.all(), [f for f, ok in zip(FIELDS, moved) if not ok]


def test_expected_signs(results):
    out = results["out"]
    grad = {name: [out[("grad", (name, k))][2] for k in range(len(OUTPUTS))] for name in FD_DESIGNS}
    bw = FIELDS.index("mem_bandwidth_tbs")
    for name in ("decode-dense-spec", "decode-moe-dep16", "serve-dense-tp4"):
        assert grad[name][1][bw] < 0, name  # more HBM bandwidth: lower TPOT
        assert grad[name][2][bw] > 0, name  # ... and more tokens/s/GPU
    isl = FIELDS.index("isl")
    assert grad["prefill-dense-tp4"][0][isl] > 0  # longer prompts take longer
    assert grad["prefill-dense-tp4"][0][FIELDS.index("prefix")] < 0  # cached prefix helps
    assert grad["decode-dense-spec"][1][FIELDS.index("spec_tokens_per_step")] < 0
    assert grad["serve-moe-dep16"][1][FIELDS.index("scaleout_bandwidth_gbit")] < 0  # DEP16 > NVL8


def test_gradients_finite_everywhere(results):
    out = results["out"]
    bad = []
    for key, (value, metrics, grad) in out.items():
        if key[0] not in ("corner", "grid", "grad"):
            continue
        if not (np.isfinite(value) and np.all(np.isfinite(metrics)) and np.all(np.isfinite(grad))):
            row = (
                CORNERS[key[1]]
                if key[0] == "corner"
                else results["grid"][key[1]]
                if key[0] == "grid"
                else key
            )
            bad.append(
                f"{key}: value {value}, non-finite grads {[FIELDS[i] for i in np.nonzero(~np.isfinite(grad))[0]]}, row {row}"
            )
    assert not bad, "\n".join(bad[:10])


def test_finite_or_is_never_needed(results):
    """Raw model values (finite_or disabled) equal the public ones on the random grid."""
    grid = results["grid"]
    public = metrics_matrix(run(grid))
    raw = np.stack([results["out"][("grid", j)][1] for j in range(len(grid))])
    np.testing.assert_allclose(raw, public, rtol=1e-9, atol=1e-12)


def test_gradient_of_a_single_field_via_tree_at():
    """The plain pattern: a scalar function that rebuilds the pytree, differentiated by jax.grad
    (one small design, decode path only; checks the vmapped machinery above is not needed)."""
    from dse.model import make_design
    from tests.support import arch, hardware

    cal = calibration()
    a, hw = arch("llama3.1-8b"), hardware("h100_sxm")
    d = make_design(phase=DECODE, batch=8.0, isl=1000.0, osl=1000.0)

    def tpot(bw):
        h = eqx.tree_at(lambda h: h.mem_bandwidth_tbs, hw, bw)
        return evaluate(a, h, cal.efficiency, cal.runtime, d, path=1).tpot_ms

    f = jax.value_and_grad(tpot)
    x = hw.mem_bandwidth_tbs
    v, g = f(x)
    h = 1e-6 * float(x)
    fd = (float(f(x + h)[0]) - float(f(x - h)[0])) / (2 * h)
    assert np.isfinite(float(g)) and float(g) < 0
    assert float(g) == pytest.approx(fd, rel=1e-5)
