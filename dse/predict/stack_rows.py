"""``dse predict`` rows that describe a whole system serving a workload (the stack model).

A row is a *stack row* when it names a ``workload`` (a ``conf/workload`` preset) or a
``system`` (a ``conf/system`` hardware mix). Its pools start from the named system (default:
the instance columns ``hardware``/``tp``/``pp``/``ep``/``dp``/``decode_gpus`` build a decode
pool) and every column in ``OVERRIDES`` replaces one setting, so a CSV can sweep prefill pool
sizes, tier capacities or speculation without new config files. Outputs are the system metrics
(hit rate, $/Mtok, $/session, tokens/s/MW, ...) next to the usual latency columns.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..model.design import DTYPE_BITS
from ..model.efficiency import framework_code
from ..model.speculation import SPEC_METHODS
from ..scenarios.schema import (
    COUNT_LIMITS,
    NUMERIC_OVERRIDES,
    STACK_OUTPUT_COLUMNS,
    _blank,
)
from ..stack import Stack, load_group
from ..values import number


def _row_values(stack: Stack, row: dict) -> tuple[dict[str, float], list[str]]:
    assumed = []
    model = row.get("model")
    if _blank(model):
        raise ValueError("column model is blank; give a Hugging Face id or alias from conf/model/")
    software = "default" if _blank(row.get("software")) else str(row["software"]).strip()
    if _blank(row.get("software")):
        assumed.append("software=default")
    if _blank(row.get("system")):
        if _blank(row.get("hardware")):
            raise ValueError("a stack row needs a system (conf/system/) or a hardware column")
        entry = stack.catalog.accelerator(str(row["hardware"]))
        system = {"decode": {"hardware": entry.name, "units": 1}, "host": entry.host}
        assumed.append(f"system: one {entry.name} decode pool from the instance columns")
    else:
        system = load_group("system", str(row["system"]).strip())
        if not _blank(row.get("hardware")):
            system = {**system, "decode": {**system["decode"], "hardware": str(row["hardware"])}}
    overrides = {}
    for col, field in NUMERIC_OVERRIDES.items():
        v = row.get(col)
        if not _blank(v):
            low, high = COUNT_LIMITS.get(col, (0.0, math.inf))
            overrides[field] = number(
                f"column {col}", v, minimum=low, maximum=high, integer=col in COUNT_LIMITS
            )
    for col, field in (("prefill_hardware", "prefill_hw"), ("ffn_hardware", "ffn_hw")):
        if not _blank(row.get(col)):
            overrides[field] = float(stack.hw_index[stack.catalog.accelerator(str(row[col])).name])
    if not _blank(row.get("host")):
        host = str(row["host"]).strip()
        if host not in stack.host_index:
            raise ValueError(
                f"column host={host!r} is not a host tier ({sorted(stack.host_index)})"
            )
        overrides["host"] = float(stack.host_index[host])
    for col, field in (
        ("weight_dtype", "weight_bits"),
        ("kv_dtype", "kv_bits"),
        ("act_dtype", "act_bits"),
    ):
        if not _blank(row.get(col)):
            key = str(row[col]).strip().lower()
            if key not in DTYPE_BITS:
                raise ValueError(f"column {col}={row[col]!r} is not one of {'|'.join(DTYPE_BITS)}")
            overrides[field] = DTYPE_BITS[key]
    if not _blank(row.get("spec_method")):
        method = str(row["spec_method"]).strip().lower()
        if method not in SPEC_METHODS:
            raise ValueError(
                f"column spec_method={method!r} is not one of {'|'.join(SPEC_METHODS)}"
            )
        overrides["spec_method"] = float(SPEC_METHODS.index(method))
    if not _blank(row.get("prompt_cache")):
        overrides["prompt_cache"] = 0.0 if str(row["prompt_cache"]).strip().lower() in (
            "0", "false", "no", "off") else 1.0  # fmt: skip
    if not _blank(row.get("framework")):  # blank: the software config's (default trtllm)
        try:
            overrides["framework"] = framework_code(str(row["framework"]))
        except ValueError as e:
            raise ValueError(f"column framework: {e}") from None
    has_prefill_layout = bool((system.get("prefill") or {}).get("units")) or any(
        not _blank(row.get(c)) for c in ("prefill_tp", "prefill_dp")
    )
    if overrides.get("prefill_units", 0) > 0 and not has_prefill_layout:
        assumed.append("prefill workers tp=1 dp=1 (set prefill_tp/prefill_dp)")
    values = stack.design_values(str(model), system, software, **overrides)
    return values, assumed


def predict_stack_rows(df: pd.DataFrame, index: np.ndarray) -> pd.DataFrame:
    """Evaluate the stack rows ``index`` of ``df``; returns a frame indexed like them."""
    out = pd.DataFrame(index=index)
    stacks: dict[str, Stack] = {}
    values, rows_ok, notes = [], [], {}
    reason = pd.Series("", index=index, dtype=object)
    for i in index:
        row = df.loc[i].to_dict()
        where = f"row {int(i) + 2}"
        try:
            workload = str(row.get("workload") or "").strip() or "agentic_coding"
            if workload not in stacks:
                stacks[workload] = Stack(workload=workload)
            v, assumed = _row_values(stacks[workload], row)
            if _blank(row.get("workload")):
                assumed.append("workload=agentic_coding")
            values.append((workload, v))
            rows_ok.append(i)
            notes[i] = assumed
        except (ValueError, KeyError) as e:
            reason[i] = f"{where}: {e}"
    out["reason"] = reason
    out["feasible"] = False
    out["assumed"] = ""
    for workload, st in stacks.items():
        sel = [j for j, (w, _) in enumerate(values) if w == workload]
        if not sel:
            continue
        metrics = st.evaluate_values([values[j][1] for j in sel])
        idx = [rows_ok[j] for j in sel]
        for col in ("ttft_ms", "tpot_ms", "tok_s_user") + STACK_OUTPUT_COLUMNS:
            out.loc[idx, col] = metrics[col].to_numpy()
        out.loc[idx, "tok_s_gpu"] = metrics["tok_s_per_unit"].to_numpy()
        out.loc[idx, "batch_used"] = metrics["decode_batch"].to_numpy()
        out.loc[idx, "max_batch"] = metrics["max_batch"].to_numpy()
        out.loc[idx, "feasible"] = metrics["feasible"].to_numpy()
        out.loc[idx, "bound"] = np.where(metrics["feasible"], metrics["bound"], "")
        texts = [f"row {int(i) + 2}: {t}" if t else "" for i, t in zip(idx, metrics["reason"])]
        out.loc[idx, "reason"] = texts
        for i in idx:
            out.loc[i, "assumed"] = "; ".join(notes[i])
    return out
