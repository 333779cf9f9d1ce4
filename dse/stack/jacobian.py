"""Values and Jacobians of system metrics with respect to the continuous design fields: the
one compiled program behind ``Stack.jacobian`` (and so every gradient-based search).

Derivatives are forward-mode (``jax.jacfwd``: a few metrics, ~10 continuous fields) through the
whole system model, including its request-rate root (``system_solve._at_root``: the implicit
derivative). A workload whose sub-agents run on a smaller model runs the same program on the
sub-agent replica (``Stack.jacobian`` adds the two as ``system_metrics.SUB_AGENT_ADDED`` says),
so one compiled program serves every workload.
"""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp

from ..model.hypothetical import HARDWARE_KNOBS
from ..model.system_batched import evaluate_system_indexed
from ..model.system_design import SystemDesign

TIER_FIELDS: tuple[str, ...] = ("host_gb_per_gpu", "storage_tb", "storage_gbs")
CONTINUOUS_FIELDS: tuple[str, ...] = HARDWARE_KNOBS + TIER_FIELDS
_F = len(CONTINUOUS_FIELDS)


def _one(tables, eff, rt, cost, profile, sd: SystemDesign, x, metrics: tuple[str, ...]):
    """Metric values, Jacobian (metrics x CONTINUOUS_FIELDS) and feasibility of design ``sd``
    with its continuous fields set to ``x``."""

    def f(x):
        d = eqx.tree_at(
            lambda s: [getattr(s, k) for k in CONTINUOUS_FIELDS], sd, [x[i] for i in range(_F)]
        )
        m = evaluate_system_indexed(tables, eff, rt, cost, profile, d)
        y = jnp.stack([getattr(m, k) for k in metrics])
        return y, (y, m.feasible > 0.5)

    jac, (y, feasible) = jax.jacfwd(f, has_aux=True)(x)
    finite = jnp.isfinite(jac)
    return y, jnp.where(finite & feasible, jac, 0.0), feasible, finite


# XLA's CPU backend at -O0 without its expensive LLVM passes: the kernel compiles in ~45 s
# instead of ~70 s (2-core CPU) and runs ~3x slower (~1 ms per design), which refine's few
# dozen calls and sensitivity tables of thousands of designs do not notice.
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def jacobian_batch(tables, eff, rt, cost, profile, designs, x, metrics):
    """Values and Jacobians of a batch of designs (vmap): the one program behind every
    gradient, compiled as ``jacobian_program`` or exported by ``Stack`` (:mod:`dse.exported`,
    with ``FAST_COMPILE`` given when the loaded program is compiled)."""
    fn = functools.partial(_one, tables, eff, rt, cost, profile, metrics=metrics)
    return jax.vmap(fn)(designs, x)


jacobian_program = jax.jit(
    jacobian_batch, static_argnames=("metrics",), compiler_options=FAST_COMPILE
)
