"""The ``dse calibrate`` and ``dse validate`` jobs (I/O around ``fit`` and ``validate``)."""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from ..catalog import GENERATIONS, load_catalog
from ..model.batched import evaluate_many
from ..model.efficiency import (
    FRAMEWORK_EVIDENCE,
    FRAMEWORK_FIELDS,
    FRAMEWORKS,
    default_runtime,
)
from .data import METRICS, default_measurements_path, load_measurements
from .fit import fit, frameworks_seen, free_fields, predict_metrics, theta_to_calibration
from .kernels import evidence_table, evidenced, fit_kernels, load_kernel_rows, residuals
from .params import Calibration, default_calibration_path
from .validate import (
    cross_validate,
    error_report_markdown,
    errors_frame,
    grouped,
    phase_group,
    summary,
    tail_table,
)


def calibrate(
    data: str | None = None, output: str | None = None, maxiter: int = 200, quiet: bool = False
) -> Path:
    """Two-level calibration: kernel efficiencies on public microbenchmarks, then the
    serving-level parameters (framework host costs, overlap, batch cap) on serving
    measurements with the kernel level held fixed. Writes the calibration file and, beside it,
    ``kernel_residuals.csv`` and ``evidence.csv`` (fitted values beside their public ranges)."""
    catalog = load_catalog()
    rows = load_kernel_rows(catalog)
    kernel_eff, kernel_loss, kernel_gens = fit_kernels(rows)
    src = Path(data) if data else default_measurements_path()
    measured = load_measurements(src, catalog)
    base_rt = default_runtime()
    gens = set(measured.generation.tolist())
    free = free_fields(evidenced(rows), gens)
    theta, loss = fit(measured, kernel_eff, base_rt, maxiter=maxiter, free=free)
    fitted = {g: g in gens or g in kernel_gens for g in GENERATIONS}
    fitted.update({f"framework:{f}": True for f in frameworks_seen(measured)})
    provenance = {
        "kernel_level": {
            "data": "conf/calibration/kernels/*.csv (public microbenchmarks; see its README)",
            "observations": int(len(rows.measured)),
            "generations": sorted(kernel_gens),
            "final_loss": round(kernel_loss, 6),
            "median_abs_error_pct": round(
                float(np.median(np.abs(residuals(kernel_eff, rows)["error_pct"]))), 2
            ),
        },
        "serving_level": {
            "data": str(src.name),
            "data_source": "shared/reference/calibration_measured.csv (MLPerf v4.1/v5.1, TRT-LLM, InferenceX, SGLang, vLLM; see calibration_README)",
            "rows_used": int(len(measured.target)),
            "rows_skipped": measured.skipped,
            "fitted": "framework costs (step_ms, seq_us, overlap, request_ms, kernel_factor) per framework, comm_overlap, max_batch_per_rank; kernel level held fixed except fields without microbenchmark evidence for a generation (free_kernel_fields)",
            "free_kernel_fields": [f"{f} ({g})" for f, g in free],
            "generations": sorted(gens),
            "frameworks": sorted(frameworks_seen(measured)),
            "final_loss": round(loss, 6),
        },
        "method": "MAP: weighted Huber on log(pred/measured) + hierarchical Gaussian prior (dse/calibration/kernels.py, fit.py)",
        "date": datetime.date.today().isoformat(),
        "command": "dse calibrate",
    }
    cal = theta_to_calibration(theta, kernel_eff, base_rt, fitted, provenance, free)
    # The final values beside their evidence (serving-refined fields say so in `level`).
    evidence = evidence_table(cal.efficiency, kernel_gens | gens)
    evidence["level"] = [
        "serving" if (r.field, r.generation) in set(free) else "kernel"
        for r in evidence.itertuples()
    ]
    cal.provenance["outside_evidence"] = [
        f"{r.field} ({r.generation}) = {r.value:.4g}, evidence {r.low:g}-{r.high:g}"
        for r in evidence.itertuples()
        if not r.inside
    ]
    path = Path(output) if output else default_calibration_path()
    residuals(kernel_eff, rows).to_csv(path.parent / "kernel_residuals.csv", index=False)
    fw_rows = [
        dict(field=f, generation=f"framework:{n}", value=float(getattr(cal.runtime, f"fw_{f}")[i]),
             low=lo, high=hi, inside=lo <= float(getattr(cal.runtime, f"fw_{f}")[i]) <= hi,
             evidence=src)
        for i, n in enumerate(FRAMEWORKS) if cal.fitted.get(f"framework:{n}", False)
        for f, (lo, hi, src) in FRAMEWORK_EVIDENCE.items()
    ]  # fmt: skip
    cal.provenance["outside_evidence"] += [
        f"{r['field']} ({r['generation']}) = {r['value']:.4g}, evidence {r['low']:g}-{r['high']:g}"
        for r in fw_rows
        if not r["inside"]
    ]
    cal.save(path)
    pd.concat([evidence, pd.DataFrame(fw_rows)]).to_csv(path.parent / "evidence.csv", index=False)
    if not quiet:
        print_calibration(cal, evidence)
    return path


def print_calibration(cal: Calibration, evidence: pd.DataFrame) -> None:
    """Every fitted value beside its evidence range; framework host costs."""
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print("== kernel level: fitted values beside public microbenchmark ranges ==")
        wide = evidence.pivot(index="field", columns="generation", values="value")
        rng = evidence.groupby("field")[["low", "high"]].first()
        print(wide.join(rng).round(4).to_string())
        bad = evidence[~evidence["inside"]]
        if len(bad):
            print("OUTSIDE the evidence (a phenomenon the model is missing):")
            print(bad[["field", "generation", "value", "low", "high"]].to_string(index=False))
        print("\n== serving level: framework host costs ==")
        rt = cal.runtime
        fw = pd.DataFrame(
            {
                **{f: np.asarray(getattr(rt, f"fw_{f}")) for f in FRAMEWORK_FIELDS},
                "fitted": [cal.fitted.get(f"framework:{n}", False) for n in FRAMEWORKS],
            },
            index=list(FRAMEWORKS),
        )
        print(fw.round(4).to_string())
        for f, (lo, hi, src) in FRAMEWORK_EVIDENCE.items():
            vals = fw.loc[fw["fitted"], f]
            out = vals[(vals < lo) | (vals > hi)]
            note = (
                ""
                if out.empty
                else f"  OUTSIDE: {', '.join(f'{n}={v:.3g}' for n, v in out.items())}"
            )
            print(f"  {f}: evidence {lo:g}-{hi:g} ({src}){note}")
        print(f"max_batch_per_rank = {float(rt.max_batch_per_rank):.0f}")


def _print_tables(errors: pd.DataFrame, title: str) -> None:
    errors = errors.assign(phase_metric=phase_group(errors))
    print(f"\n== {title}: absolute % error (median, p90) ==")
    for by in ("phase_metric", "batch_band", "framework", "source", "hardware", "model"):
        with pd.option_context("display.width", 160):
            print(summary(grouped(errors, by), by).to_string())
            print()
    tails = tail_table(errors)
    if len(tails):
        with pd.option_context("display.width", 160):
            print(tails.to_string())
            print()


def validate(
    data: str | None = None,
    calibration: str | None = None,
    folds: int = 0,
    output: str | None = None,
    markdown: str | None = None,
) -> pd.DataFrame:
    catalog = load_catalog()
    src = Path(data) if data else default_measurements_path()
    measured = load_measurements(src, catalog)
    cal = Calibration.load(calibration) if calibration else Calibration.load()
    m = evaluate_many(
        measured.archs,
        measured.hws,
        cal.efficiency,
        cal.runtime,
        measured.model_idx,
        measured.hw_idx,
        measured.designs,
    )
    pred = np.stack([np.asarray(getattr(m, k)) for k in METRICS], axis=1)
    errors = errors_frame(pred, measured, np.asarray(m.feasible))
    print(
        f"dse validate: {len(measured.target)} measured scenarios, {len(errors)} measured metrics ({src.name})"
    )
    for s in measured.skipped:
        print(f"  skipped {s}")
    _print_tables(errors, "in-sample (calibrated on these points)")
    md = [error_report_markdown(errors, "In-sample (fitted on these points)")]
    if folds > 1:
        cv = cross_validate(measured, default_runtime(), folds=folds)
        _print_tables(cv, f"held-out ({folds}-fold cross-validation: refit without each fold)")
        md.insert(0, error_report_markdown(cv, f"Held-out ({folds}-fold cross-validation)"))
        errors = errors.merge(
            cv[["id", "metric", "predicted", "error_pct"]].rename(
                columns={"predicted": "predicted_cv", "error_pct": "error_pct_cv"}
            ),
            on=["id", "metric"],
        )
    if markdown:
        Path(markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(markdown).write_text("\n".join(md))
        print(f"markdown tables -> {markdown}")
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        errors.to_csv(output, index=False)
        print(f"per-point errors -> {output}")
    return errors


__all__ = ["calibrate", "validate", "fit", "predict_metrics"]
