"""Error report of the model against measurements: in-sample and k-fold cross-validated.

Cross-validation refits the parameters without each fold's rows and predicts those rows, so
the "held-out" columns estimate the error on operating points the model has never seen.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..model.efficiency import FRAMEWORKS, Runtime
from .data import METRICS, PERCENTILE_METRICS, CalibrationData
from .fit import fit, predict_metrics


def errors_frame(pred: np.ndarray, data: CalibrationData, feasible: np.ndarray) -> pd.DataFrame:
    """One row per (scenario, measured metric): predicted, measured, signed % error."""
    recs = []
    f = data.frame
    fw_codes = np.asarray(data.designs.framework).astype(int)
    for i in range(len(data.target)):
        for j, m in enumerate(METRICS):
            meas = data.target[i, j]
            if np.isnan(meas):
                continue
            p = float(pred[i, j]) if feasible[i] > 0.5 else np.nan
            recs.append(
                dict(
                    id=f["id"].iloc[i], source=f.get("source", pd.Series([""] * len(f))).iloc[i],
                    hardware=f["hardware"].iloc[i], model=str(f["model"].iloc[i]).split("/")[-1],
                    phase=f["phase"].iloc[i], mode=f["mode"].iloc[i], metric=m,
                    framework=FRAMEWORKS[fw_codes[i]], batch_band=batch_band(f.iloc[i]),
                    measured=meas, predicted=p, error_pct=100.0 * (p - meas) / meas,
                )
            )  # fmt: skip
    return pd.DataFrame(recs)


def cross_validate(
    data: CalibrationData, base_rt: Runtime, folds: int = 5, seed: int = 0
) -> pd.DataFrame:
    """Held-out predictions for every measured point (k-fold over scenarios). The kernel level
    never sees a serving measurement, so it is fitted once; the serving level is refitted
    without each fold."""
    from ..catalog import load_catalog
    from .fit import free_fields
    from .kernels import evidenced, fit_kernels, load_kernel_rows

    rows_k = load_kernel_rows(load_catalog())
    base_eff, _, _ = fit_kernels(rows_k)
    evidence = evidenced(rows_k)
    n = len(data.target)
    order = np.random.default_rng(seed).permutation(n)
    pred = np.full((n, len(METRICS)), np.nan)
    feas = np.zeros(n)
    for k in range(folds):
        test = np.sort(order[k::folds])
        train = np.setdiff1d(np.arange(n), test)
        free = free_fields(evidence, set(data.generation[train].tolist()))
        theta, _ = fit(data, base_eff, base_rt, train, free=free)
        p, fz = predict_metrics(theta, data, base_eff, base_rt, test, free)
        pred[test] = np.asarray(p)
        feas[test] = np.asarray(fz)
    return errors_frame(pred, data, feas)


BANDS = ((1, "1"), (16, "2-16"), (64, "17-64"), (256, "65-256"), (1024, "257-1024"))


def batch_band(row) -> str:
    """Sequences in flight per instance (concurrency, else batch); blank = saturating."""
    for col in ("concurrency", "batch"):
        v = pd.to_numeric(pd.Series([row.get(col)]), errors="coerce").iloc[0]
        if np.isfinite(v) and v > 0:
            return next((name for hi, name in BANDS if v <= hi), ">1024")
    return "saturating"


def summary(errors: pd.DataFrame, by: str) -> pd.DataFrame:
    """Median and 90th-percentile absolute % error per group (and the count)."""
    e = errors.assign(abs_err=errors["error_pct"].abs())
    g = e.groupby(by)["abs_err"]
    out = pd.DataFrame(
        {"n": g.size(), "median_abs_pct": g.median(), "p90_abs_pct": g.quantile(0.9)}
    )
    return out.round(1)


def phase_group(errors: pd.DataFrame) -> pd.Series:
    """prefill/decode (latency of one phase) vs serve throughput vs serve latency."""

    def label(r):
        if r["phase"] in ("prefill", "decode"):
            return f"{r['phase']}:{r['metric']}"
        return (
            "serve:throughput"
            if r["metric"] in ("tok_s_gpu", "input_tok_s_gpu")
            else f"serve:{r['metric']}"
        )

    return errors.apply(label, axis=1)


def markdown_table(frame: pd.DataFrame, index_name: str) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""
    cols = [index_name, *frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for idx, row in frame.iterrows():
        cells = [str(idx)] + [f"{v:g}" if isinstance(v, float) else str(v) for v in row.tolist()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


GROUPS = (
    ("phase_metric", "phase:metric"),
    ("batch_band", "batch band (sequences in flight)"),
    ("framework", "framework"),
    ("hardware", "hardware"),
    ("model", "model"),
    ("source", "source"),
)


def grouped(errors: pd.DataFrame, by: str) -> pd.DataFrame:
    """The rows a group table summarizes: every metric by phase:metric; the means only by the
    other groupings (percentiles have their own table, ``tail_table``)."""
    if by == "phase_metric":
        return errors
    return errors[~errors["metric"].isin(PERCENTILE_METRICS)]


def tail_table(errors: pd.DataFrame) -> pd.DataFrame:
    """Per percentile metric: |error| of the p99 itself and of its ratio to the mean (p99 /
    mean, measured against predicted: the spread model alone, without the mean's error)."""
    rows = {}
    for p99 in PERCENTILE_METRICS:
        mean = p99.removesuffix("_p99")
        a = errors[errors["metric"] == p99].set_index("id")
        b = errors[errors["metric"] == mean].set_index("id")
        both = a.join(b, lsuffix="_p99", rsuffix="_mean", how="inner")
        if both.empty:
            continue
        ratio_meas = both["measured_p99"] / both["measured_mean"]
        ratio_pred = both["predicted_p99"] / both["predicted_mean"]
        ratio_err = (100.0 * (ratio_pred - ratio_meas) / ratio_meas).abs()
        rows[p99] = {
            "n": len(both),
            "p99_median_abs_pct": both["error_pct_p99"].abs().median(),
            "ratio_measured_median": ratio_meas.median(),
            "ratio_predicted_median": ratio_pred.median(),
            "ratio_median_abs_pct": ratio_err.median(),
        }
    return pd.DataFrame.from_dict(rows, orient="index").round(2)


def error_report_markdown(errors: pd.DataFrame, title: str) -> str:
    errors = errors.assign(phase_metric=phase_group(errors))
    parts = [f"**{title}**", ""]
    for by, name in GROUPS:
        parts += [markdown_table(summary(grouped(errors, by), by), name), ""]
    tails = tail_table(errors)
    if len(tails):
        parts += [markdown_table(tails, "percentile (p99 / mean: the spread alone)"), ""]
    return "\n".join(parts)
