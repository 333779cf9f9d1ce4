"""Python entry point for whole-stack evaluations: names in, a table of system metrics out.

    >>> from dse.stack import Stack
    >>> stack = Stack(workload="agentic_coding")
    >>> stack.evaluate([dict(model="kimi-k2", system="vr200_lpx_afd", software="nvfp4_mtp")])

A :class:`Stack` holds the catalogs as stacked tables, the calibration, the cost parameters and
one workload profile (simulated once); ``evaluate`` takes any number of rows, each naming a
model, a system config and a software config plus optional field overrides, and evaluates them
all in one vectorized call.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import numpy as np
import pandas as pd

from ..calibration import Calibration
from ..catalog import load_catalog
from ..catalog.costs import load_cost_params
from ..exported import Kernel
from ..model.batched import stack
from ..model.reasons import REASON_TEXT
from ..model.system_batched import SystemTables, evaluate_chunk, evaluate_systems
from ..model.system_design import SYSTEM_DEFAULTS, SYSTEM_FIELDS, system_design
from ..model.system_metrics import (
    SESSION_FIELDS,
    SUB_AGENT_ADDED,
    SYSTEM_BOUNDS,
    SYSTEM_METRIC_FIELDS,
    SystemMetrics,
    with_sub_agents,
)
from ..model.workload import WorkloadProfile
from ..workload.presets import load_preset
from ..workload.profile import profile_for, split_profiles
from .config import load_group, system_values
from .jacobian import CONTINUOUS_FIELDS, FAST_COMPILE, jacobian_batch


class ModelInputs(NamedTuple):
    """What the system model reads besides the designs and the workload profile."""

    tables: SystemTables
    efficiency: object  # dse.model.efficiency.Efficiency, one entry per generation
    runtime: object  # dse.model.efficiency.Runtime
    cost: object  # dse.model.cost.CostParams


def _sweep_kernel() -> Kernel:
    return Kernel("system_sweep", lambda *a: jax.tree.leaves(evaluate_chunk(*a)))


class Stack:
    """Catalogs + calibration + cost + one workload, ready to evaluate system designs."""

    def __init__(
        self,
        workload: str | WorkloadProfile = "agentic_coding",
        cost: str = "default",
        cost_overrides: dict | None = None,
        calibration: Calibration | None = None,
        sessions: int = 64,
        seed: int = 0,
    ):
        self.catalog = load_catalog()
        self.calibration = calibration or Calibration.load()
        self.cost = load_cost_params(cost, overrides=cost_overrides)
        self.workload_name = workload if isinstance(workload, str) else "custom"
        self.sub_model: str | None = None
        self.sub_profile: WorkloadProfile | None = None
        if isinstance(workload, str):
            params = load_preset(workload)
            if params.sub_agent_model:
                self.sub_model = self.catalog.model(params.sub_agent_model).id
                self.profile, self.sub_profile = split_profiles(params, sessions, seed)
            else:
                self.profile = profile_for(workload, sessions=sessions, seed=seed)
        else:
            self.profile = workload
        tables = self.catalog.tables  # stacked once per catalog (shared with dse predict)
        self.model_names = list(tables.model_ids)
        # The sub-agent model's row in the tables (-1: sub-agents run on the main model).
        self.sub_model_index = self.model_names.index(self.sub_model) if self.sub_model else -1
        self.hw_names = list(tables.hardware_names)
        self.host_names = list(self.catalog.hosts)
        self.tables = SystemTables(
            archs=tables.archs,
            hardware=tables.hws,
            hosts=stack([self.catalog.host_tier(h) for h in self.host_names]),
        )
        self.hw_index = {n: i for i, n in enumerate(self.hw_names)}
        self.host_index = {n: i for i, n in enumerate(self.host_names)}
        # The compiled programs, loaded from dse.exported's artifacts when a process has run
        # them before (no tracing of the model), exported on first use otherwise.
        self._sweep = _sweep_kernel()
        self._jacobians: dict[tuple[str, ...], Kernel] = {}

    def __getstate__(self) -> dict:
        """Pickled without its compiled programs (a process's own; ``dse.search`` ships a
        Stack to Dask workers): the receiving process loads or builds them on first use."""
        state = dict(self.__dict__)
        state["_sweep"], state["_jacobians"] = None, {}
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._sweep = _sweep_kernel()

    @property
    def inputs(self) -> ModelInputs:
        """The model's inputs besides the designs and the workload: catalog tables,
        calibrated efficiencies and runtime, cost parameters."""
        cal = self.calibration
        return ModelInputs(self.tables, cal.efficiency, cal.runtime, self.cost)

    def with_inputs(self, inputs: ModelInputs) -> Stack:
        """This stack with other model inputs of the same shapes (a what-if: a price, a link
        latency, an efficiency changed). The compiled programs are shared: values, not
        shapes, changed, so nothing is traced or compiled again. ``self`` is unchanged."""
        other = object.__new__(Stack)  # not copy.copy: pickling drops the compiled programs
        other.__dict__.update(self.__dict__)
        cal = self.calibration
        other.tables, other.cost = inputs.tables, inputs.cost
        other.calibration = Calibration(inputs.efficiency, inputs.runtime, cal.fitted,
                                        cal.provenance)  # fmt: skip
        return other

    def design_values(
        self, model: str, system: str | dict, software: str | dict = "default", **overrides
    ) -> dict[str, float]:
        """SystemDesign field values for named (or inline) configs plus field overrides."""
        entry = self.catalog.model(model)
        sys_cfg = load_group("system", system) if isinstance(system, str) else system
        sw_cfg = load_group("software", software) if isinstance(software, str) else software
        values = system_values(
            sys_cfg,
            sw_cfg,
            self.catalog,
            self.model_names.index(entry.id),
            self.hw_index,
            self.host_index,
        )
        for key, value in overrides.items():
            if key not in SYSTEM_DEFAULTS:
                raise ValueError(
                    f"unknown system field {key!r} (fields: {', '.join(SYSTEM_FIELDS)})"
                )
            values[key] = float(value)
        return values

    def evaluate_arrays(
        self, columns, profile: WorkloadProfile | None = None
    ) -> dict[str, np.ndarray]:
        """Metric arrays (``SYSTEM_METRIC_FIELDS``) of design columns (an array per
        ``SYSTEM_FIELDS`` field, equal lengths) in one vectorized call: every caller's batches
        (the search engines, ``dse stack``, ``dse predict``'s stack rows, the MILP's rates) go
        through here. ``profile`` None: the stack's workload, with its sub-agent replica where
        the workload runs sub-agents on another model (``with_sub_agents``); a profile: exactly
        that workload on the designs."""
        return self._evaluate(columns, profile)[0]

    def _evaluate(self, columns, profile):
        """(metrics, the sub-agent replica's metrics or None) as numpy arrays."""
        designs = system_design(columns)
        cal = self.calibration
        kernel = lambda *a: SystemMetrics(*self._sweep(*a))  # noqa: E731
        main = evaluate_systems(self.tables, cal.efficiency, cal.runtime, self.cost,
                                profile or self.profile, designs, kernel=kernel)  # fmt: skip
        sub = None
        if profile is None and self.sub_profile is not None:
            on_sub = np.full_like(designs.model, self.sub_model_index)
            sub = evaluate_systems(self.tables, cal.efficiency, cal.runtime, self.cost,
                                   self.sub_profile, eqx.tree_at(lambda d: d.model, designs, on_sub),
                                   kernel=kernel)  # fmt: skip
            main = with_sub_agents(main, sub, self.profile, self.sub_profile)
        as_dict = lambda m: {f: np.asarray(getattr(m, f)) for f in SYSTEM_METRIC_FIELDS}  # noqa: E731
        return as_dict(main), (as_dict(sub) if sub is not None else None)

    def evaluate_values(
        self, rows: list[dict[str, float]], profile: WorkloadProfile | None = None
    ) -> pd.DataFrame:
        """``evaluate_arrays`` of SystemDesign field dicts, as a table (``metrics_frame``)."""
        columns = {
            f: np.array([float(r[f]) for r in rows], dtype=np.float64) for f in SYSTEM_FIELDS
        }
        return metrics_frame(self.evaluate_arrays(columns, profile))

    def jacobian(self, rows: list[dict[str, float]], x: np.ndarray, metrics: tuple[str, ...]):
        """(values [n, metrics], Jacobians [n, metrics, CONTINUOUS_FIELDS], feasible [n], finite
        [n, metrics, fields]) of the designs ``rows`` with their continuous fields set to ``x``
        ([n, CONTINUOUS_FIELDS]), with the stack's workload and sub-agent replica (as
        ``evaluate_arrays``: the sub-agent replica's values and derivatives are added where
        ``SUB_AGENT_ADDED`` says). Batches are padded to a power of two (>= 8): similar sizes
        share one compiled program, and every workload uses the same one."""
        n = len(rows)
        size = max(8, 1 << (n - 1).bit_length())

        def pad(a):
            a = np.asarray(a, dtype=np.float64)
            return np.concatenate([a, np.repeat(a[-1:], size - n, 0)])

        designs = system_design({f: pad([float(r[f]) for r in rows]) for f in SYSTEM_FIELDS})
        cal, metrics = self.calibration, tuple(metrics)

        kernel = self._jacobians.get(metrics) or self._jacobians.setdefault(
            metrics,
            Kernel(
                "system_jacobian",
                lambda *a: jacobian_batch(*a, metrics=metrics),
                static=metrics,
                compiler_options=FAST_COMPILE,
            ),  # fmt: skip
        )

        def run(profile, designs):
            out = kernel(self.tables, cal.efficiency, cal.runtime, self.cost, profile, designs,
                         pad(x))  # fmt: skip
            return [np.asarray(a)[:n] for a in out]

        y, jac, feasible, finite = run(self.profile, designs)
        if self.sub_profile is not None:  # the same program on the sub-agent replica
            on_sub = np.full_like(designs.model, self.sub_model_index)
            ys, js, fs, fins = run(
                self.sub_profile, eqx.tree_at(lambda d: d.model, designs, on_sub)
            )
            added = np.array([k in SUB_AGENT_ADDED for k in metrics])
            y = y + np.where(added, ys, 0.0)
            jac = jac + np.where(added[:, None], js, 0.0)
            finite = finite & (fins | ~added[:, None])
            feasible = feasible & fs
            jac = np.where(feasible[:, None, None], jac, 0.0)  # as the program does
            session = np.array([k in SESSION_FIELDS for k in metrics])
            if session.any():
                # A session prices sub-agent calls at the sub replica's latencies, which the
                # main replica's program does not see: values from ``with_sub_agents``, no
                # derivative (flagged not finite, so gradient steps leave them out).
                columns = {f: np.array([float(r[f]) for r in rows]) for f in SYSTEM_FIELDS}
                columns.update({f: np.asarray(x)[:, i] for i, f in enumerate(CONTINUOUS_FIELDS)})
                values = self.evaluate_arrays(columns)
                for i in np.flatnonzero(session):
                    y[:, i] = values[metrics[i]]
                jac[:, session] = 0.0
                finite[:, session] = False
        return y, jac, feasible, finite

    def warm_jacobian(self, n: int, metrics: tuple[str, ...]) -> None:
        """Compile (or load from JAX's cache) the program ``jacobian`` runs for up to ``n``
        designs and ``metrics``, on default designs: what an entry point runs in a background
        thread while a search sweeps, so that the gradients that follow find it ready. A caller
        that arrives while it compiles waits for that compile: JAX's jit cache lets one thread
        trace and compile a key while the others wait (tests/search/test_gradients.py)."""
        row = {f: float(v) for f, v in SYSTEM_DEFAULTS.items()}
        x = np.array([[row[k] for k in CONTINUOUS_FIELDS]] * n)
        self.jacobian([row] * n, x, tuple(metrics))

    def evaluate(self, rows: list[dict]) -> pd.DataFrame:
        """Rows of ``model``, ``system``, ``software`` (+ field overrides) → metrics table."""
        values, names = [], []
        for i, row in enumerate(rows):
            row = dict(row)
            try:
                names.append({k: row.get(k) for k in ("model", "system", "software") if k in row})
                values.append(
                    self.design_values(
                        row.pop("model"), row.pop("system"), row.pop("software", "default"), **row
                    )
                )
            except KeyError as e:
                raise ValueError(f"row {i}: missing {e.args[0]!r}") from None
            except ValueError as e:
                raise ValueError(f"row {i}: {e}") from None
        columns = {f: np.array([v[f] for v in values], dtype=np.float64) for f in SYSTEM_FIELDS}
        combined, sub = self._evaluate(columns, None)
        metrics = metrics_frame(combined)
        if sub is not None:  # the sub-agent replica's own figures, beside the session's
            metrics["sub_agent_model"] = self.sub_model
            metrics["sub_tok_s_user"] = sub["tok_s_user"]
            metrics["sub_feasible"] = sub["feasible"] > 0.5
            metrics["main_usd_per_session"] = combined["usd_per_session"] - sub["usd_per_session"]
        design = pd.DataFrame(values).drop(columns=["model"])
        for col in ("decode_hw", "prefill_hw", "ffn_hw"):
            design[col.replace("_hw", "_hardware")] = [self.hw_names[int(v)] for v in design[col]]
        design["host_tier"] = [self.host_names[int(v)] for v in design["host"]]
        return pd.concat([pd.DataFrame(names), design, metrics], axis=1)


def metrics_frame(metrics: dict[str, np.ndarray]) -> pd.DataFrame:
    """Metric arrays as a table, with the codes decoded (the one place): ``feasible`` a bool,
    ``reason`` and ``bound`` as text."""
    df = pd.DataFrame({f: np.asarray(metrics[f]) for f in SYSTEM_METRIC_FIELDS})
    df["feasible"] = df["feasible"] > 0.5
    df["reason"] = [REASON_TEXT.get(float(r), "") for r in df["reason"]]
    df["bound"] = [SYSTEM_BOUNDS[int(b)] for b in df["bound"]]
    return df


__all__ = ["ModelInputs", "Stack", "metrics_frame"]
