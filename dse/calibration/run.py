"""The ``dse calibrate`` and ``dse validate`` jobs (I/O around ``fit`` and ``validate``)."""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from ..catalog import load_catalog
from ..model.batched import evaluate_many
from ..model.efficiency import default_runtime
from .data import METRICS, default_measurements_path, load_measurements
from .fit import fit, predict_metrics, theta_to_calibration
from .params import Calibration, default_calibration_path
from .validate import cross_validate, error_report_markdown, errors_frame, phase_group, summary


def calibrate(data: str | None = None, output: str | None = None, maxiter: int = 200) -> Path:
    catalog = load_catalog()
    src = Path(data) if data else default_measurements_path()
    measured = load_measurements(src, catalog)
    base_rt = default_runtime()
    theta, loss = fit(measured, base_rt, maxiter=maxiter)
    fitted = set(measured.generation.tolist())
    provenance = {
        "data": str(src.name),
        "data_source": "shared/reference/calibration_measured.csv (MLPerf v4.1/v5.1, TRT-LLM, InferenceX, SGLang, vLLM; see calibration_README)",
        "rows_used": int(len(measured.target)),
        "rows_skipped": measured.skipped,
        "fitted_generations": sorted(fitted),
        "method": "MAP: weighted Huber on log(pred/measured) + hierarchical Gaussian prior (dse/calibration/fit.py)",
        "final_loss": round(loss, 6),
        "date": datetime.date.today().isoformat(),
        "command": "dse calibrate",
    }
    cal = theta_to_calibration(theta, base_rt, fitted, provenance)
    path = Path(output) if output else default_calibration_path()
    cal.save(path)
    return path


def _print_tables(errors: pd.DataFrame, title: str) -> None:
    errors = errors.assign(phase_metric=phase_group(errors))
    print(f"\n== {title}: absolute % error (median, p90) ==")
    for by in ("phase_metric", "source", "hardware", "model"):
        with pd.option_context("display.width", 160):
            print(summary(errors, by).to_string())
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
