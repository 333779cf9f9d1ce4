"""Fit the efficiency parameters to measurements with JAX gradients (MAP, hierarchical prior).

Parametrization: fractions through a logit, positive quantities through a log, so the optimizer
is unconstrained and every value stays physical. Each generation's parameter is a shared value
plus a per-generation deviation; both carry Gaussian priors (shared around ``PRIOR``, wide;
deviations around 0, narrow). Generations with few measurements therefore borrow strength
from the others instead of being tuned to a handful of points, and generations with none get
the shared value. One global runtime parameter is fitted too: the engine's per-rank batch cap,
which sets saturated throughput.

Loss: weighted Huber on ``log(predicted / measured)`` (a relative error that treats 2x too slow
and 2x too fast alike and is robust to the few rows whose mapping is doubtful).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

from ..catalog import GENERATIONS
from ..model.batched import evaluate_indexed
from ..model.efficiency import (
    EFFICIENCY_FIELDS,
    GENERATION_PRIOR,
    PRIOR,
    Efficiency,
    Runtime,
)
from ..model.serving import path_index
from .data import METRICS, CalibrationData

FRACTIONS = {
    "gemm_mfu_fp4",
    "gemm_mfu_fp8",
    "gemm_mfu_bf16",
    "attn_mfu",
    "mbu",
    "link_eff",
    "moe_eff",
    "comm_overlap",
}
SHARED_SIGMA = 1.0  # prior width of the shared value (logit/log units)
DEVIATION_SIGMA = 0.2  # prior width of a generation's deviation from the shared value
HUBER_DELTA = 0.25
# Scatter expected between a mean-value model and one public measurement (mapping assumptions,
# unreported engine flags, run-to-run noise): ~15 %.
OBS_SIGMA = 0.15


def _to_unconstrained(field: str, value):
    return np.log(value / (1 - value)) if field in FRACTIONS else np.log(value)


def _to_constrained(field: str, z):
    return jax.nn.sigmoid(z) if field in FRACTIONS else jnp.exp(z)


def _unpack(theta: jnp.ndarray, base_rt: Runtime) -> tuple[Efficiency, Runtime]:
    nf, ng = len(EFFICIENCY_FIELDS), len(GENERATIONS)
    shared = theta[:nf]
    dev = theta[nf : nf + nf * ng].reshape(nf, ng)
    cols = [_to_constrained(f, shared[i] + dev[i]) for i, f in enumerate(EFFICIENCY_FIELDS)]
    fields = {k: getattr(base_rt, k) for k in Runtime.__dataclass_fields__}
    rt = Runtime(**{**fields, "max_batch_per_rank": jnp.exp(theta[-1])})
    return Efficiency(*cols), rt


def initial_theta(base_rt: Runtime) -> np.ndarray:
    nf, ng = len(EFFICIENCY_FIELDS), len(GENERATIONS)
    shared = np.array([_to_unconstrained(f, PRIOR[f]) for f in EFFICIENCY_FIELDS])
    return np.concatenate([shared, np.zeros(nf * ng), [np.log(float(base_rt.max_batch_per_rank))]])


def predict_metrics(theta, data: CalibrationData, base_rt: Runtime, rows=None):
    """Predicted METRICS [n, 5] and feasibility [n] for ``rows`` (default all), differentiable in
    ``theta``. Rows are grouped by serving path (static) so each group traces only its path."""
    eff, rt = _unpack(theta, base_rt)
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
        preds.append(jnp.stack([getattr(m, k) for k in METRICS], axis=1))
        feas.append(m.feasible)
        order.append(np.nonzero(paths == path)[0])
    inverse = np.argsort(np.concatenate(order))
    return jnp.concatenate(preds)[inverse], jnp.concatenate(feas)[inverse]


def _huber(x):
    a = jnp.abs(x)
    return jnp.where(a <= HUBER_DELTA, 0.5 * x**2, HUBER_DELTA * (a - 0.5 * HUBER_DELTA))


def make_loss(data: CalibrationData, base_rt: Runtime, rows: np.ndarray):
    target = jnp.asarray(np.nan_to_num(data.target[rows], nan=1.0))
    weight = jnp.asarray(data.weight[rows])
    nf = len(EFFICIENCY_FIELDS)
    prior_shared = jnp.asarray(initial_theta(base_rt)[:nf])
    rows_j = np.asarray(rows)

    def loss(theta):
        pred, _ = predict_metrics(theta, data, base_rt, rows_j)
        ratio = jnp.log(jnp.maximum(pred, 1e-9) / target)
        # Negative log-likelihood with observation noise OBS_SIGMA (in log units).
        fit = jnp.sum(weight * _huber(ratio)) / OBS_SIGMA**2
        dev = theta[nf:-1]
        shared = theta[:nf]
        reg = jnp.sum(((shared - prior_shared) / SHARED_SIGMA) ** 2) + jnp.sum(
            (dev / DEVIATION_SIGMA) ** 2
        )
        cap_reg = ((theta[-1] - jnp.log(2048.0)) / 1.5) ** 2
        n = jnp.maximum(jnp.sum((weight > 0).astype(jnp.float64)), 1.0)
        return (fit + 0.5 * (reg + cap_reg)) / n  # per measured metric, for a well-scaled optimizer

    return jax.jit(jax.value_and_grad(loss))


def fit(
    data: CalibrationData, base_rt: Runtime, rows: np.ndarray | None = None, maxiter: int = 300
) -> tuple[np.ndarray, float]:
    """MAP estimate of the unconstrained parameter vector on ``rows`` (default: all)."""
    rows = np.arange(len(data.target)) if rows is None else np.asarray(rows)
    vg = make_loss(data, base_rt, rows)

    def fun(x):
        v, g = vg(jnp.asarray(x))
        return float(v), np.asarray(g, dtype=np.float64)

    res = scipy.optimize.minimize(
        fun, initial_theta(base_rt), jac=True, method="L-BFGS-B", options={"maxiter": maxiter}
    )
    return res.x, float(res.fun)


def theta_to_calibration(
    theta: np.ndarray, base_rt: Runtime, fitted_generations: set[str], provenance: dict
):
    from .params import Calibration

    eff, rt = _unpack(jnp.asarray(theta), base_rt)
    # Generations without data whose physics differs from GPUs keep their own prior.
    for i, g in enumerate(GENERATIONS):
        if g not in fitted_generations and g in GENERATION_PRIOR:
            eff = Efficiency(
                *[
                    getattr(eff, f).at[i].set(GENERATION_PRIOR[g].get(f, getattr(eff, f)[i]))
                    for f in EFFICIENCY_FIELDS
                ]
            )
    return Calibration(eff, rt, {g: g in fitted_generations for g in GENERATIONS}, provenance)
