"""``dse predict``: a table of scenarios in, the same rows with predictions out.

Parsing and validation happen per row in Python (bad rows get ``feasible=false`` and a reason);
all valid rows are then evaluated in one batched, compiled call.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..calibration import Calibration
from ..catalog import Catalog, CatalogError, load_catalog
from ..model.batched import evaluate_many
from ..model.design import Design
from ..model.metrics import BOUNDS
from ..model.reasons import REASON_TEXT
from ..scenarios.schema import (
    EXTRA_OUTPUT_COLUMNS,
    OUTPUT_COLUMNS,
    PERCENTILE_COLUMNS,
    Scenario,
    _blank,
    check_columns,
    parse_frame,
)

LAYOUT_COLUMNS = ("tp", "pp", "dp", "ep")
MAX_PP = 8  # pipeline stages searched for a row without a layout (serving rarely uses more)


def layout_is_free(row: dict) -> bool:
    """An aggregated row that gives its GPU count but no parallel layout at all: dse searches
    the layouts that fit and answers with the best (as a submitter would have tuned it)."""
    mode = str(row.get("mode") or "agg").strip().lower()
    return (
        all(_blank(row.get(c)) for c in LAYOUT_COLUMNS)
        and not _blank(row.get("gpus"))
        and mode in ("agg", "nan")
    )


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def layout_candidates(row: dict, catalog: Catalog) -> list[dict]:
    """Every (tp, pp, dp, ep) over the row's GPUs that could be deployed: TP divides the heads,
    PP at most MAX_PP and the layers, EP 1 or all TP x DP ranks (for MoE models, up to the
    experts). Invalid ones are also refused by the schema; this keeps the list short."""
    try:
        gpus = int(float(row["gpus"]))
        arch = catalog.model(str(row["model"])).arch
    except (ValueError, TypeError, CatalogError):
        return [dict(row, tp=row.get("gpus"))]  # let the schema say what is wrong
    heads, layers = int(arch.num_attention_heads), int(arch.num_layers)
    experts = int(arch.num_experts)
    out = []
    for pp in _divisors(gpus):
        if pp > min(MAX_PP, layers):
            continue
        for tp in _divisors(gpus // pp):
            if heads % tp:
                continue
            dp = gpus // (pp * tp)
            eps = {1} if experts == 0 else {e for e in (1, tp, tp * dp) if e <= experts}
            out += [dict(row, tp=tp, pp=pp, dp=dp, ep=ep) for ep in sorted(eps)]
    return out or [dict(row, tp=row.get("gpus"))]


# What "best" means for a row, by phase: the metric a submitter tunes the layout for.
BEST_BY_PHASE = {"prefill": ("ttft_ms", min), "decode": ("tpot_ms", min),
                 "serve": ("tok_s_gpu", max)}  # fmt: skip


def _predict_free_layouts(df, free, catalog, calibration) -> pd.DataFrame:
    """Rows without a layout: predict every candidate layout in one batch, keep the best."""
    records = df.to_dict("records")
    expanded, origin = [], []
    for i, row in enumerate(records):
        rows = layout_candidates(row, catalog) if i in free else [row]
        expanded += rows
        origin += [i] * len(rows)
    pred = predict_frame(pd.DataFrame(expanded, columns=list(df.columns) + [
        c for c in LAYOUT_COLUMNS if c not in df.columns]), catalog, calibration)  # fmt: skip
    origin = np.asarray(origin)
    keep = []
    for i in range(len(records)):
        cand = np.nonzero(origin == i)[0]
        if i not in free:
            keep.append(cand[0])
            continue
        phase = str(records[i].get("phase") or "serve").strip().lower()
        metric, better = BEST_BY_PHASE.get(phase, BEST_BY_PHASE["serve"])
        ok = [j for j in cand if bool(pred["feasible"].iloc[j])]
        if not ok:
            keep.append(cand[0])
            pred.loc[cand[0], "reason"] = (
                f"{pred['reason'].iloc[cand[0]]} (no layout of {records[i]['gpus']} GPUs works: "
                f"{len(cand)} tried)"
            ).strip()
            continue
        j = better(ok, key=lambda k: float(pred[metric].iloc[k]))
        r = pred.iloc[j]
        note = (f"layout searched ({len(cand)} tried, best {metric}): tp={r['tp']:g} "
                f"pp={r['pp']:g} dp={r['dp']:g} ep={r['ep']:g}")  # fmt: skip
        pred.loc[j, "assumed"] = "; ".join(x for x in (note, pred["assumed"].iloc[j]) if x)
        keep.append(j)
    return pred.iloc[keep].reset_index(drop=True)


def predict_frame(
    df: pd.DataFrame, catalog: Catalog | None = None, calibration: Calibration | None = None
) -> pd.DataFrame:
    """Predictions for every row of ``df`` (the scenario schema); returns a new frame."""
    catalog = catalog or load_catalog()
    calibration = calibration or Calibration.load()
    df = df.rename(columns=lambda c: c.strip() if isinstance(c, str) else c)
    header_errors, _ = check_columns(df.columns)
    if header_errors:
        raise ValueError(header_errors[0])
    from ..scenarios.schema import STACK_OUTPUT_COLUMNS, is_stack_row
    from .stack_rows import predict_stack_rows

    stack_mask = np.array([is_stack_row(r) for r in df.to_dict("records")], dtype=bool)
    instance_df = df[~stack_mask].reset_index(drop=True)
    if stack_mask.any():
        stacked = predict_stack_rows(df.reset_index(drop=True), np.nonzero(stack_mask)[0])
        if len(instance_df):
            inst = predict_frame(instance_df, catalog, calibration)
        else:
            inst = pd.DataFrame(columns=list(df.columns))
        out = df.reset_index(drop=True).copy()
        for col in OUTPUT_COLUMNS + EXTRA_OUTPUT_COLUMNS:
            if col in out.columns:
                out = out.rename(columns={col: f"measured_{col}"})
        extra = [c for c in STACK_OUTPUT_COLUMNS]
        for col in list(OUTPUT_COLUMNS) + list(EXTRA_OUTPUT_COLUMNS) + extra:
            merged = pd.Series([None] * len(out), dtype=object)
            if col in inst.columns:
                merged[np.nonzero(~stack_mask)[0]] = inst[col].to_numpy()
            if col in stacked.columns:
                merged[np.nonzero(stack_mask)[0]] = stacked[col].to_numpy()
            if col in ("reason", "bound", "assumed", "feasible"):
                out[col] = merged.fillna("") if col != "feasible" else merged.fillna(False)
            else:
                out[col] = pd.to_numeric(merged, errors="coerce")
        out["feasible"] = out["feasible"].astype(bool)
        return out
    free = [i for i, row in enumerate(df.to_dict("records")) if layout_is_free(row)]
    if free:
        return _predict_free_layouts(df, free, catalog, calibration)
    scenarios, errors = parse_frame(df, catalog)
    out = df.copy()
    # Measured values already in the input keep their data under measured_<name>.
    for col in OUTPUT_COLUMNS + EXTRA_OUTPUT_COLUMNS:
        if col in out.columns:
            out = out.rename(columns={col: f"measured_{col}"})
    n = len(df)
    res = {
        c: np.full(n, np.nan)
        for c in (
            "ttft_ms",
            "tpot_ms",
            "tok_s_user",
            "tok_s_gpu",
            "memory_gb",
            "input_tok_s_gpu",
            "batch_used",
            "max_batch",
            *PERCENTILE_COLUMNS,
        )
    }
    feasible = np.zeros(n, dtype=bool)
    reason = np.array(errors, dtype=object)
    bound = np.array([""] * n, dtype=object)
    assumed = np.array([""] * n, dtype=object)
    ok = [i for i, s in enumerate(scenarios) if s is not None]
    if ok:
        metrics = evaluate_scenarios([scenarios[i] for i in ok], catalog, calibration)
        idx = np.array(ok)
        phase = np.array([scenarios[i].values["phase"] for i in ok])
        has_ttft = phase != 1.0
        has_tpot = phase != 0.0
        res["ttft_ms"][idx] = np.where(has_ttft, metrics.ttft_ms, np.nan)
        res["tpot_ms"][idx] = np.where(has_tpot, metrics.tpot_ms, np.nan)
        res["tok_s_user"][idx] = np.where(has_tpot, metrics.tok_s_user, np.nan)
        res["tok_s_gpu"][idx] = np.where(has_tpot, metrics.tok_s_gpu, np.nan)
        res["input_tok_s_gpu"][idx] = metrics.input_tok_s_gpu
        res["memory_gb"][idx] = metrics.memory_gb
        res["batch_used"][idx] = metrics.batch
        res["max_batch"][idx] = metrics.max_batch
        for col in PERCENTILE_COLUMNS:
            shown = has_ttft if col.startswith("ttft") else has_tpot
            res[col][idx] = np.where(shown, getattr(metrics, col), np.nan)
        feasible[idx] = metrics.feasible > 0.5
        for j, i in enumerate(ok):
            text = REASON_TEXT.get(float(metrics.reason[j]), "")
            rid = df["id"].iloc[i] if "id" in df.columns else None
            where = f"row {i + 2}" + (f" (id {rid})" if isinstance(rid, str) and rid else "")
            reason[i] = f"{where}: {text}" if text else ""
            bound[i] = BOUNDS[int(metrics.bound[j])] if feasible[i] else ""
            gen = catalog.accelerator(scenarios[i].hardware).generation
            notes = list(scenarios[i].assumed)
            v = scenarios[i].values
            wanted = v["concurrency"]
            if v["phase"] == 2.0 and v["mode"] == 0.0 and wanted > metrics.max_batch[j] >= 1.0:
                notes.append(
                    f"{wanted - metrics.max_batch[j]:.0f} of {wanted:g} requests queue (at most {metrics.max_batch[j]:.0f} fit)"
                )
            if not calibration.fitted.get(gen, False):
                notes.append(f"efficiency uncalibrated for {gen} (prior values)")
            assumed[i] = "; ".join(notes)
        # Infeasible rows carry no performance numbers.
        for c in ("ttft_ms", "tpot_ms", "tok_s_user", "tok_s_gpu", "input_tok_s_gpu",
                  *PERCENTILE_COLUMNS):  # fmt: skip
            res[c][~feasible] = np.nan
    for c in ("ttft_ms", "tpot_ms", "tok_s_user", "tok_s_gpu", "memory_gb"):
        out[c] = res[c]
    out["feasible"] = feasible
    out["reason"] = reason
    out["bound"] = bound
    out["input_tok_s_gpu"] = res["input_tok_s_gpu"]
    out["batch_used"] = res["batch_used"]
    out["max_batch"] = res["max_batch"]
    for c in PERCENTILE_COLUMNS:
        out[c] = res[c]
    out["assumed"] = assumed
    return out


def evaluate_scenarios(scenarios: list[Scenario], catalog: Catalog, calibration: Calibration):
    """Batched model evaluation of parsed scenarios; Metrics of numpy arrays."""
    # The whole catalog's tables (one compiled shape for every table of rows).
    t = catalog.tables
    model_idx = t.model_index([s.model for s in scenarios])
    hw_idx = t.hardware_index([s.hardware for s in scenarios])
    fields = Design.__dataclass_fields__
    designs = Design(
        **{f: np.array([s.values[f] for s in scenarios], dtype=np.float64) for f in fields}
    )
    return evaluate_many(
        t.archs, t.hws, calibration.efficiency, calibration.runtime, model_idx, hw_idx, designs
    )
