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

import numpy as np
import pandas as pd

from ..calibration import Calibration
from ..catalog import load_catalog
from ..catalog.costs import load_cost_params
from ..model.batched import stack
from ..model.system_batched import SystemTables, evaluate_systems
from ..model.system_design import SYSTEM_DEFAULTS, SYSTEM_FIELDS, SystemDesign
from ..model.system_metrics import SYSTEM_BOUNDS, SYSTEM_METRIC_FIELDS, SYSTEM_REASON_TEXT
from ..model.workload import WorkloadProfile
from ..workload.presets import load_preset
from ..workload.profile import profile_for, split_profiles
from .config import load_group, system_values


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
        self.model_names = list(self.catalog.models)
        self.hw_names = list(self.catalog.hardware)
        self.host_names = list(self.catalog.hosts)
        self.tables = SystemTables(
            archs=stack([self.catalog.models[m].arch for m in self.model_names]),
            hardware=stack([self.catalog.hardware[h].hw for h in self.hw_names]),
            hosts=stack([self.catalog.host_tier(h) for h in self.host_names]),
        )
        self.hw_index = {n: i for i, n in enumerate(self.hw_names)}
        self.host_index = {n: i for i, n in enumerate(self.host_names)}

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

    def evaluate_values(
        self, rows: list[dict[str, float]], profile: WorkloadProfile | None = None
    ) -> pd.DataFrame:
        """Evaluate SystemDesign field dicts in one vectorized call (default: the workload's
        profile; with a sub-agent model, the main agent's requests)."""
        designs = SystemDesign(
            **{f: np.array([float(r[f]) for r in rows], dtype=np.float64) for f in SYSTEM_FIELDS}
        )
        cal = self.calibration
        out = evaluate_systems(
            self.tables, cal.efficiency, cal.runtime, self.cost, profile or self.profile, designs
        )
        df = pd.DataFrame({f: np.asarray(getattr(out, f)) for f in SYSTEM_METRIC_FIELDS})
        df["feasible"] = df["feasible"] > 0.5
        df["reason"] = [SYSTEM_REASON_TEXT.get(float(r), "") for r in df["reason"]]
        df["bound"] = [SYSTEM_BOUNDS[int(b)] for b in df["bound"]]
        return df

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
        metrics = self.evaluate_values(values)
        if self.sub_profile is not None:
            # Sub-agent requests run on their own replica of the same system with the smaller
            # model; a session pays for both.
            sub_idx = float(self.model_names.index(self.sub_model))
            sub = self.evaluate_values([{**v, "model": sub_idx} for v in values], self.sub_profile)
            metrics["sub_agent_model"] = self.sub_model
            metrics["sub_tok_s_user"] = sub["tok_s_user"]
            metrics["sub_feasible"] = sub["feasible"]
            metrics["main_usd_per_session"] = metrics["usd_per_session"]
            metrics["usd_per_session"] = metrics["usd_per_session"] + sub["usd_per_session"]
            metrics["feasible"] = metrics["feasible"] & sub["feasible"]
        design = pd.DataFrame(values).drop(columns=["model"])
        for col in ("decode_hw", "prefill_hw", "ffn_hw"):
            design[col.replace("_hw", "_hardware")] = [self.hw_names[int(v)] for v in design[col]]
        design["host_tier"] = [self.host_names[int(v)] for v in design["host"]]
        return pd.concat([pd.DataFrame(names), design, metrics], axis=1)


__all__ = ["Stack"]
