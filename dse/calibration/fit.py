"""Serving-level calibration: fit the framework and overlap parameters on serving measurements,
with the kernel level held fixed (MAP with JAX gradients, hierarchical prior).

The kernel-level efficiencies (``efficiency.KERNEL_FIELDS``) come from public
microbenchmarks (``dse/calibration/kernels.py``) and are *not* refitted here: serving
measurements carry effects the model lacks (each engine's scheduler, datasets' length
distributions, queueing), and letting the serving fit move kernel parameters is what once
pushed a per-layer overhead to 60 us and HBM efficiency to 0.40. What the serving fit does
estimate is what only serving runs show:

* per framework (TensorRT-LLM, vLLM, SGLang): host ms per engine step, us per running
  sequence and the fraction of host work the overlap scheduler hides (``Runtime.fw_*``);
* ``comm_overlap`` per generation (a shared value plus a narrow per-generation deviation);
* the engine's per-rank batch cap (one global value);
* kernel-level fields that a generation's own microbenchmarks do not pin down (``free``: for
  example AMD's per-kernel time, for which no public launch benchmark exists), as a narrow
  deviation from the kernel level's cross-generation value: each parameter is fitted at the
  lowest level that has evidence for it.

Parametrization: fractions through a logit, positive quantities through a log, so the
optimizer is unconstrained and every value stays physical. Loss: weighted Huber on
``log(predicted / measured)`` plus Gaussian priors around ``PRIOR`` / ``FRAMEWORK_PRIOR``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize
from jax import Array

from ..catalog import GENERATIONS
from ..model.batched import evaluate_indexed
from ..model.efficiency import (
    EFFICIENCY_FIELDS,
    FRAMEWORK_FIELDS,
    FRAMEWORK_PRIOR,
    FRAMEWORKS,
    KERNEL_FIELDS,
    PRIOR,
    SERVING_FIELDS,
    Efficiency,
    Runtime,
)
from ..model.serving import path_index
from .data import FITTED_METRICS, METRICS, CalibrationData

FRACTIONS = {"comm_overlap", "overlap", "gemm_mfu_fp4", "gemm_mfu_fp8", "gemm_mfu_bf16",
             "attn_mfu", "mbu", "link_eff", "moe_eff"}  # fmt: skip
FREE_SIGMA = 0.3  # prior width of a serving-level refinement of a kernel field (logit/log units)
SHARED_SIGMA = 1.0  # prior width of a shared value (logit/log units)
DEVIATION_SIGMA = 0.2  # prior width of a generation's deviation from the shared value
# Prior widths of a framework's host parameters around FRAMEWORK_PRIOR (log / logit units). The
# per-step cost and the overlap are pinned by public framework evidence (FRAMEWORK_PRIOR's
# sources) and by the batch-1 rows; the per-sequence cost is what only saturated runs show.
FRAMEWORK_SIGMA = {
    "step_ms": 0.3, "seq_us": 1.5, "overlap": 0.3, "request_ms": 1.0, "kernel_factor": 0.4,
}  # fmt: skip
HUBER_DELTA = 0.25
# Scatter expected between a mean-value model and one public measurement (mapping assumptions,
# unreported engine flags, run-to-run noise): ~15 %.
OBS_SIGMA = 0.15
FITTED_FRAMEWORKS = tuple(f for f in FRAMEWORKS if f != "static")


def to_unconstrained(field: str, value):
    """Logit of a fraction, log of a positive quantity (the optimizer's coordinates)."""
    return jnp.log(value / (1 - value)) if field in FRACTIONS else jnp.log(value)


def to_constrained(field: str, z):
    return jax.nn.sigmoid(z) if field in FRACTIONS else jnp.exp(z)


def _sizes():
    ns, ng, nfw = len(SERVING_FIELDS), len(GENERATIONS), len(FITTED_FRAMEWORKS)
    return ns, ng, nfw


def _unpack(
    theta, base_eff: Efficiency, base_rt: Runtime, free: tuple = ()
) -> tuple[Efficiency, Runtime]:
    ns, ng, nfw = _sizes()
    shared = theta[:ns]
    dev = theta[ns : ns + ns * ng].reshape(ns, ng)
    vals = {f: getattr(base_eff, f) for f in EFFICIENCY_FIELDS}
    for i, f in enumerate(SERVING_FIELDS):
        vals[f] = to_constrained(f, shared[i] + dev[i])
    off = ns + ns * ng
    fw = theta[off : off + len(FRAMEWORK_FIELDS) * nfw].reshape(len(FRAMEWORK_FIELDS), nfw)
    idx = jnp.asarray([FRAMEWORKS.index(n) for n in FITTED_FRAMEWORKS])
    fields = {k: getattr(base_rt, k) for k in Runtime.__dataclass_fields__}
    for j, f in enumerate(FRAMEWORK_FIELDS):
        fields[f"fw_{f}"] = jnp.asarray(fields[f"fw_{f}"]).at[idx].set(to_constrained(f, fw[j]))
    fields["max_batch_per_rank"] = jnp.exp(theta[-1])
    start = off + len(FRAMEWORK_FIELDS) * nfw
    for j, (f, g) in enumerate(free):
        i = GENERATIONS.index(g)
        z = to_unconstrained(f, vals[f][i]) + theta[start + j]
        vals[f] = vals[f].at[i].set(to_constrained(f, z))
    return Efficiency(**vals), Runtime(**fields)


def free_fields(evidence: dict[str, set[str]], generations) -> tuple[tuple[str, str], ...]:
    """(field, generation) pairs the serving level may refine: kernel fields without
    microbenchmark evidence for a generation that has serving measurements."""
    return tuple(
        (f, g) for g in GENERATIONS if g in set(generations) for f in KERNEL_FIELDS
        if f not in evidence.get(g, set())
    )  # fmt: skip


def initial_theta(base_rt: Runtime, free: tuple = ()) -> np.ndarray:
    ns, ng, nfw = _sizes()
    shared = np.array([float(to_unconstrained(f, PRIOR[f])) for f in SERVING_FIELDS])
    fw = np.array(
        [
            [float(to_unconstrained(f, FRAMEWORK_PRIOR[n][f])) for n in FITTED_FRAMEWORKS]
            for f in FRAMEWORK_FIELDS
        ]  # fmt: skip
    ).ravel()
    return np.concatenate(
        [shared, np.zeros(ns * ng), fw, np.zeros(len(free)),
         [np.log(float(base_rt.max_batch_per_rank))]]
    )  # fmt: skip


def predict_metrics(
    theta,
    data: CalibrationData,
    base_eff,
    base_rt: Runtime,
    rows=None,
    free: tuple = (),
    metrics: tuple[str, ...] = METRICS,
):
    """Predicted ``metrics`` [n, len(metrics)] (default every one of METRICS) and feasibility
    [n] for ``rows`` (default all), differentiable in ``theta``. Rows are grouped by serving
    path (static) so each group traces only its path."""
    eff, rt = _unpack(theta, base_eff, base_rt, free)
    rows = np.arange(len(data.target)) if rows is None else np.asarray(rows)
    paths = np.array(
        [path_index(float(data.designs.phase[i]), float(data.designs.mode[i])) for i in rows]
    )
    preds, feas, order = [], [], []
    for path in np.unique(paths):
        sub = rows[paths == path]
        designs = jax.tree.map(lambda x: jnp.asarray(np.asarray(x)[sub]), data.designs)
        fn = functools.partial(evaluate_indexed, path=int(path))
        m = jax.vmap(fn, in_axes=(None, None, None, None, 0, 0, 0))(
            data.archs,
            data.hws,
            eff,
            rt,
            jnp.asarray(data.model_idx[sub]),
            jnp.asarray(data.hw_idx[sub]),
            designs,
        )
        preds.append(jnp.stack([getattr(m, k) for k in metrics], axis=1))
        feas.append(m.feasible)
        order.append(np.nonzero(paths == path)[0])
    inverse = np.argsort(np.concatenate(order))
    return jnp.concatenate(preds)[inverse], jnp.concatenate(feas)[inverse]


def _huber(x):
    a = jnp.abs(x)
    return jnp.where(a <= HUBER_DELTA, 0.5 * x**2, HUBER_DELTA * (a - 0.5 * HUBER_DELTA))


def loss_targets(data: CalibrationData, rows: np.ndarray) -> tuple[Array, Array]:
    """(target, weight) of ``rows`` for the fitted metrics, as the loss takes them (a missing
    measurement has weight 0 and a placeholder target of 1)."""
    cols = [METRICS.index(m) for m in FITTED_METRICS]
    target = jnp.asarray(np.nan_to_num(data.target[rows][:, cols], nan=1.0))
    return target, jnp.asarray(data.weight[rows][:, cols])


def make_loss(
    data: CalibrationData, base_eff: Efficiency, base_rt: Runtime, rows: np.ndarray, free=()
):
    """The compiled MAP objective on ``rows`` and its gradient: ``(theta, target, weight) ->
    ((loss, (predictions, feasible)), d loss / d theta)``, predictions of FITTED_METRICS.
    Targets and weights are arguments, not constants, so one compiled program serves every
    set of measurements of the same rows (the fit, synthetic-truth tests)."""
    ns, ng, nfw = _sizes()
    theta0 = jnp.asarray(initial_theta(base_rt, free))
    off_fw = ns + ns * ng + len(FRAMEWORK_FIELDS) * nfw  # end of the framework block
    rows_j = np.asarray(rows)
    off = ns + ns * ng

    def loss(theta, target, weight):
        # Only the fitted metrics enter the loss (the percentiles, weight 0, are left out of
        # the program instead of being computed and multiplied by 0).
        pred, feas = predict_metrics(
            theta, data, base_eff, base_rt, rows_j, free, FITTED_METRICS
        )
        ratio = jnp.log(jnp.maximum(pred, 1e-9) / target)
        # Negative log-likelihood with observation noise OBS_SIGMA (in log units).
        fit = jnp.sum(weight * _huber(ratio)) / OBS_SIGMA**2
        reg = jnp.sum(((theta[:ns] - theta0[:ns]) / SHARED_SIGMA) ** 2)
        reg = reg + jnp.sum((theta[ns:off] / DEVIATION_SIGMA) ** 2)
        sigma = jnp.repeat(jnp.asarray([FRAMEWORK_SIGMA[f] for f in FRAMEWORK_FIELDS]), nfw)
        reg = reg + jnp.sum(((theta[off:off_fw] - theta0[off:off_fw]) / sigma) ** 2)
        reg = reg + jnp.sum((theta[off_fw:-1] / FREE_SIGMA) ** 2)
        cap_reg = ((theta[-1] - jnp.log(2048.0)) / 1.5) ** 2
        n = jnp.maximum(jnp.sum((weight > 0).astype(jnp.float64)), 1.0)
        # Per measured metric, for a well-scaled optimizer.
        return (fit + 0.5 * (reg + cap_reg)) / n, (pred, feas)

    return jax.jit(jax.value_and_grad(loss, has_aux=True))


def fit(
    data: CalibrationData,
    base_eff: Efficiency,
    base_rt: Runtime,
    rows: np.ndarray | None = None,
    maxiter: int = 300,
    free: tuple = (),
    loss=None,
) -> tuple[np.ndarray, float]:
    """MAP estimate of the serving-level parameter vector on ``rows`` (default: all), with the
    kernel-level efficiencies of ``base_eff`` held fixed. ``loss``: a ``make_loss`` program of
    the same rows to reuse (its compile is most of a small fit's time)."""
    rows = np.arange(len(data.target)) if rows is None else np.asarray(rows)
    vg = make_loss(data, base_eff, base_rt, rows, free) if loss is None else loss
    target, weight = loss_targets(data, rows)

    def fun(x):
        (v, _), g = vg(jnp.asarray(x), target, weight)
        return float(v), np.asarray(g, dtype=np.float64)

    res = scipy.optimize.minimize(
        fun, initial_theta(base_rt, free), jac=True, method="L-BFGS-B", options={"maxiter": maxiter}
    )
    return res.x, float(res.fun)


def frameworks_seen(data: CalibrationData) -> set[str]:
    codes = np.unique(np.asarray(data.designs.framework)).astype(int)
    return {FRAMEWORKS[c] for c in codes if FRAMEWORKS[c] != "static"}


def theta_to_calibration(
    theta: np.ndarray,
    base_eff: Efficiency,
    base_rt: Runtime,
    fitted: dict[str, bool],
    provenance: dict,
    free: tuple = (),
):
    """A :class:`Calibration` from the serving fit over the kernel-level ``base_eff``;
    ``fitted`` flags generations (by name) and frameworks (``framework:<name>``) with data.
    Generations without serving data keep the kernel level's serving fields' prior."""
    from .params import Calibration

    eff, rt = _unpack(jnp.asarray(theta), base_eff, base_rt, free)
    for i, g in enumerate(GENERATIONS):
        if not fitted.get(g, False):
            eff = Efficiency(**{
                f: getattr(eff, f).at[i].set(getattr(base_eff, f)[i]) if f in SERVING_FIELDS
                else getattr(eff, f) for f in EFFICIENCY_FIELDS
            })  # fmt: skip
    return Calibration(eff, rt, fitted, provenance)
