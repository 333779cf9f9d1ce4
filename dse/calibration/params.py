"""Read and write calibrated efficiencies (``conf/calibration/*.yaml``) with their provenance.

File layout::

    provenance: {fitted_on: ..., data: [...], command: ..., date: ...}
    efficiency:
      hopper: {gemm_mfu_fp8: 0.61, ..., _fitted: true}
      rubin:  {..., _fitted: false}   # no public measurements: the prior, said so in outputs
    framework:
      trtllm: {step_ms: 0.8, seq_us: 3.0, overlap: 0.85, _fitted: true}
    runtime: {latency_scaleout_us: 25.0, ...}

A generation missing from the file gets the prior values, flagged as uncalibrated.
"""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
import yaml

from ..catalog import GENERATIONS, conf_dir
from ..files import load_yaml
from ..jax_config import configure
from ..model.efficiency import (
    EFFICIENCY_FIELDS,
    FRAMEWORK_FIELDS,
    FRAMEWORK_PRIOR,
    FRAMEWORKS,
    RUNTIME_SCALARS,
    Efficiency,
    Runtime,
    default_runtime,
    generation_prior,
    prior_efficiency,
)


def default_calibration_path() -> Path:
    return conf_dir() / "calibration" / "default.yaml"


class Calibration:
    """Per-generation efficiencies + runtime facts + which generations were actually fitted."""

    def __init__(
        self, efficiency: Efficiency, runtime: Runtime, fitted: dict[str, bool], provenance: dict
    ):
        self.efficiency = efficiency
        self.runtime = runtime
        self.fitted = fitted
        self.provenance = provenance

    @classmethod
    def prior(cls) -> Calibration:
        return cls(
            prior_efficiency(),
            default_runtime(),
            {g: False for g in GENERATIONS},
            {"note": "prior values, not fitted"},
        )

    @classmethod
    def load(cls, path: Path | str | None = None) -> Calibration:
        configure()  # float64 before the first array is built
        if path is not None and not Path(path).exists():
            raise ValueError(
                f"calibration file {path} does not exist; run `dse calibrate -o {path}` or omit it"
            )
        path = Path(path) if path else default_calibration_path()
        if not path.exists():
            return cls.prior()  # every generation flagged uncalibrated in predictions
        with open(path) as f:
            data = load_yaml(f) or {}
        per_gen = data.get("efficiency", {})
        unknown = set(per_gen) - set(GENERATIONS)
        if unknown:
            raise ValueError(
                f"{path}: unknown generation(s) {sorted(unknown)}; expected {GENERATIONS}"
            )
        cols = {f: [] for f in EFFICIENCY_FIELDS}
        fitted = {}
        for g in GENERATIONS:
            vals = per_gen.get(g, {})
            fitted[g] = bool(vals.get("_fitted", False))
            prior = generation_prior(g)
            for f in EFFICIENCY_FIELDS:
                cols[f].append(float(vals.get(f, prior[f])))
        eff = Efficiency(*[jnp.asarray(cols[f], dtype=jnp.float64) for f in EFFICIENCY_FIELDS])
        overrides = data.get("runtime", {}) or {}
        bad = set(overrides) - set(RUNTIME_SCALARS)
        if bad:
            raise ValueError(f"{path}: unknown runtime field(s) {sorted(bad)}")
        per_fw = data.get("framework", {}) or {}
        unknown_fw = set(per_fw) - set(FRAMEWORKS)
        if unknown_fw:
            raise ValueError(
                f"{path}: unknown framework(s) {sorted(unknown_fw)}; expected {FRAMEWORKS}"
            )
        fitted.update(
            {f"framework:{n}": bool(v.get("_fitted", False)) for n, v in per_fw.items()}
        )
        rt = default_runtime()
        scalars = {k: jnp.asarray(float(overrides.get(k, getattr(rt, k)))) for k in RUNTIME_SCALARS}
        fw = {
            f"fw_{f}": jnp.asarray(
                [float(per_fw.get(n, {}).get(f, FRAMEWORK_PRIOR[n][f])) for n in FRAMEWORKS]
            )
            for f in FRAMEWORK_FIELDS
        }
        return cls(eff, Runtime(**scalars, **fw), fitted, data.get("provenance", {}))

    def save(self, path: Path | str) -> None:
        per_gen = {}
        for i, g in enumerate(GENERATIONS):
            vals = {f: round(float(getattr(self.efficiency, f)[i]), 5) for f in EFFICIENCY_FIELDS}
            vals["_fitted"] = bool(self.fitted.get(g, False))
            per_gen[g] = vals
        per_fw = {}
        for i, n in enumerate(FRAMEWORKS):
            vals = {f: round(float(getattr(self.runtime, f"fw_{f}")[i]), 5) for f in FRAMEWORK_FIELDS}
            vals["_fitted"] = bool(self.fitted.get(f"framework:{n}", False))
            per_fw[n] = vals
        data = {
            "provenance": self.provenance,
            "efficiency": per_gen,
            "framework": per_fw,
            "runtime": {k: float(getattr(self.runtime, k)) for k in RUNTIME_SCALARS},
        }
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as f:
            f.write(
                "# Calibrated efficiencies, written by `dse calibrate`; see provenance below.\n"
            )
            yaml.safe_dump(data, f, sort_keys=False, width=100)
