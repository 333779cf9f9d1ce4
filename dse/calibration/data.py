"""Measured operating points → model inputs and targets, ready for a differentiable loss.

Targets per row are whichever of ``ttft_ms, tpot_ms, tok_s_user, tok_s_gpu, input_tok_s_gpu``
were measured (and ``ttft_ms_p99, tpot_ms_p99``, compared but never fitted) (``tok_s_user`` only where TPOT is absent: it is 1000/TPOT). Weights follow the
source's stated confidence, and serving TTFT is down-weighted because it is dominated by
load-dependent queueing that a mean-value model only approximates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..catalog import Catalog
from ..model.design import Design
from ..scenarios.schema import parse_frame

METRICS = ("ttft_ms", "tpot_ms", "tok_s_user", "tok_s_gpu", "input_tok_s_gpu", "ttft_ms_p99",
           "tpot_ms_p99")  # fmt: skip
# Percentiles are compared, never fitted (weight 0): they test the spread model
# (``dse.model.tails``), whose parameters all come from the workload and the means.
PERCENTILE_METRICS = ("ttft_ms_p99", "tpot_ms_p99")
CONFIDENCE_WEIGHT = {"high": 1.0, "medium": 0.7, "low": 0.35}
METRIC_WEIGHT = {
    "ttft_ms": 0.3,
    "tpot_ms": 1.0,
    "tok_s_user": 1.0,
    "tok_s_gpu": 1.0,
    "input_tok_s_gpu": 1.0,
    "ttft_ms_p99": 0.0,
    "tpot_ms_p99": 0.0,
}
FITTED_METRICS = tuple(m for m in METRICS if METRIC_WEIGHT[m] > 0)


def default_measurements_path() -> Path:
    """The shipped copy of the public measurements (``conf/calibration/measured.csv``)."""
    from ..catalog import conf_dir

    return conf_dir() / "calibration" / "measured.csv"


@dataclass
class CalibrationData:
    frame: pd.DataFrame  # the usable rows (parsed OK and at least one target)
    archs: object
    hws: object
    model_idx: np.ndarray
    hw_idx: np.ndarray
    designs: Design
    target: np.ndarray  # [n, len(METRICS)], NaN where not measured
    weight: np.ndarray  # [n, len(METRICS)], 0 where not measured
    generation: np.ndarray  # [n] generation name per row
    skipped: list[str]  # why rows were left out


def framework_of_stack(stack) -> str:
    """The framework a measurement ran on, from the free-text ``stack`` cell ("Dynamo +
    TensorRT-LLM", "SGLang (PD disagg, ...)", "vLLM 0.9.0 (ROCm 6.4.1)"); blank when unknown."""
    text = str(stack).lower() if isinstance(stack, str) else ""
    for key, name in (("sglang", "sglang"), ("vllm", "vllm"), ("tensorrt", "trtllm"),
                      ("trt", "trtllm")):  # fmt: skip
        if key in text:
            return name
    return ""


def load_measurements(path: Path | str, catalog: Catalog) -> CalibrationData:
    df = pd.read_csv(path)
    if "framework" not in df.columns and "stack" in df.columns:
        df["framework"] = [framework_of_stack(v) for v in df["stack"]]
    scenarios, errors = parse_frame(df, catalog, means=True)
    keep, skipped = [], []
    target = np.full((len(df), len(METRICS)), np.nan)
    for j, m in enumerate(METRICS):
        if m in df.columns:
            target[:, j] = pd.to_numeric(df[m], errors="coerce").to_numpy()
    has_tpot = ~np.isnan(target[:, METRICS.index("tpot_ms")])
    target[has_tpot, METRICS.index("tok_s_user")] = np.nan
    superseded = (
        pd.to_numeric(df["superseded"], errors="coerce").fillna(0).to_numpy() > 0
        if "superseded" in df.columns
        else np.zeros(len(df), dtype=bool)
    )
    for i, s in enumerate(scenarios):
        if s is None:
            skipped.append(errors[i])
        elif superseded[i]:
            skipped.append(
                f"row {i + 2} ({df['id'].iloc[i]}): superseded snapshot (older software than "
                "later public runs of the same setup); kept in the file for reference"
            )
        elif np.all(np.isnan(target[i])):
            skipped.append(f"row {i + 2} ({df['id'].iloc[i]}): no measured metric")
        else:
            keep.append(i)
    scen = [scenarios[i] for i in keep]
    tables = catalog.tables  # the whole catalog: the same compiled shapes as dse predict
    designs = Design(
        **{f: np.array([s.values[f] for s in scen]) for f in Design.__dataclass_fields__}
    )
    conf = (
        df["confidence"].fillna("medium")
        if "confidence" in df.columns
        else pd.Series(["medium"] * len(df))
    )
    t = target[keep]
    w = np.where(np.isnan(t), 0.0, 1.0)
    w *= np.array([CONFIDENCE_WEIGHT.get(str(c), 0.7) for c in conf.iloc[keep]])[:, None]
    w *= np.array([METRIC_WEIGHT[m] for m in METRICS])[None, :]
    return CalibrationData(
        frame=df.iloc[keep].reset_index(drop=True),
        archs=tables.archs,
        hws=tables.hws,
        model_idx=tables.model_index([s.model for s in scen]),
        hw_idx=tables.hardware_index([s.hardware for s in scen]),
        designs=designs,
        target=t,
        weight=w,
        generation=np.array([catalog.hardware[s.hardware].generation for s in scen]),
        skipped=skipped,
    )
