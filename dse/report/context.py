"""The report's content as plain data (dicts, lists, strings): what the Markdown and HTML
templates render. No formatting decisions beyond number formatting live in the templates.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..files import conf_dir, load_yaml
from ..model.hypothetical import HARDWARE_KNOBS
from ..version import __version__
from .accuracy import accuracy_table
from .review import FIXED_TRAFFIC, Review, bounds_text, deltas

# Every setting needed to deploy a design, grouped as an operator reads them.
DEPLOY = {
    "system": ("system", "software", "spec", "spec_k", "weight_bits", "kv_bits", "prompt_cache"),
    "decode pool": ("decode_hardware", "decode_units", "tp", "pp", "ep", "dp", "kvp", "batch"),
    "prefill pool": ("prefill_hardware", "prefill_units", "prefill_tp", "prefill_ep", "prefill_dp"),
    "FFN pool (attention-FFN disaggregation)": (
        "ffn_hardware",
        "ffn_units",
        "ffn_tp",
        "ffn_pp",
        "microbatches",
    ),
    "KV-cache tiers": ("host_tier", "host_gb_per_gpu", "storage_tb", "storage_gbs"),
    "hardware variant (decode chip's spec scaled; hypothetical)": HARDWARE_KNOBS,
}
METRICS = ("tok_s_user", "ttft_ms", "ttft_ms_p50", "ttft_ms_p99", "tpot_ms", "tpot_ms_p50",
           "tpot_ms_p99", "tok_s_per_unit", "usd_per_mtok", "usd_per_session", "session_minutes",
           "session_minutes_p50", "session_minutes_p95", "session_ttft_minutes",
           "session_decode_minutes", "session_fanout_minutes", "hit_rate", "units", "capex_usd",
           "power_kw", "tok_s_per_mw")  # fmt: skip
# Shown for agent-session workloads only: with fixed-length traffic a "session" is one request.
SESSION_METRICS = tuple(m for m in METRICS if m.startswith("session_"))
DELTA_METRICS = ("tok_s_user", "tok_s_per_unit", "usd_per_mtok", "capex_usd", "power_kw")
LOWER_IS_BETTER = {"usd_per_mtok", "capex_usd", "power_kw", "ttft_ms", "tpot_ms", "usd_per_session",
                   "ttft_ms_p50", "ttft_ms_p99", "tpot_ms_p50", "tpot_ms_p99",
                   *SESSION_METRICS}  # fmt: skip
BOUND_TEXT = {
    "decode_compute": "decode compute (FLOPs)",
    "decode_memory": "decode memory bandwidth (weights + KV bytes per step)",
    "decode_network": "scale-up/scale-out collectives in the decode step",
    "decode_overhead": "fixed time per step: every kernel's launch and ramp, the framework's host work",
    "prefill_pool": "the prefill pool (prompt processing sets the request rate)",
}
HW_SPECS = ("status", "fp8_tflops", "fp4_tflops", "mem_capacity_gb", "mem_bandwidth_tbs", "sram_mb",
            "scaleup_bandwidth_gbs", "scaleout_bandwidth_gbit", "tdp_w", "price_usd")  # fmt: skip
COST_KEYS = ("amortization_years", "cost_of_capital", "electricity_usd_per_kwh", "pue",
             "power_utilization", "network_usd_per_accelerator", "host_dram_usd_per_gb",
             "storage_usd_per_tb")  # fmt: skip


def fmt(v) -> str:
    """Numbers as a reviewer reads them: 3 significant digits, thousands separators."""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, float, np.integer, np.floating)):
        v = float(v)
        if not np.isfinite(v):
            return "–"
        if v == int(v) and abs(v) < 1e7:
            return f"{int(v):,}"
        return f"{v:,.3g}" if abs(v) < 1e3 else f"{v:,.0f}"
    return "" if v is None else str(v)


def _deploy_card(row: pd.Series) -> list[dict]:
    sections = []
    for name, cols in DEPLOY.items():
        if name.startswith("FFN") and float(row.get("ffn_units", 0)) <= 0:
            continue
        if name.startswith("prefill") and float(row.get("prefill_units", 0)) <= 0:
            continue
        if name.startswith("hardware variant") and all(
            float(row.get(c, 1.0)) == 1.0 for c in cols
        ):  # the catalog's chip: nothing to say
            continue
        items = [(c, fmt(row[c])) for c in cols if c in row.index]
        text = ", ".join(f"{k}={v}" for k, v in items)
        sections.append({"name": name, "settings": items, "text": text})
    return sections


def _limits(row: pd.Series, review: Review) -> list[str]:
    """What limits a design: the model's bound, the step's largest part, and binding bounds."""
    out = [f"bound by {BOUND_TEXT.get(str(row['bound']), row['bound'])}"]
    parts = {k: float(row[k]) * 1e3 for k in ("compute_s", "memory_s", "network_s", "overhead_s")}
    terms = " + ".join(f"{k[:-2]} {v:.2f}" for k, v in sorted(parts.items(), key=lambda kv: -kv[1]))
    out.append(f"decode step {sum(parts.values()):.2f} ms = {terms} (ms)")
    for c in (*review.constraints, *review.best_where):
        v = float(row[c.metric])
        for bound, side in ((c.low, "≥"), (c.high, "≤")):
            if bound is not None and abs(v - bound) <= 0.05 * max(abs(bound), 1e-9):
                out.append(f"at its {c.metric} {side} {bound:g} bound ({fmt(v)})")
    if float(row.get("prefill_utilization", 0)) >= 0.79:
        out.append(
            f"prefill pool {100 * float(row['prefill_utilization']):.0f} % utilized (cap 80 %)"
        )
    return out


def shown_metrics(review: Review) -> tuple[str, ...]:
    """The metrics a recommended configuration lists: session times only for session workloads."""
    if review.run.summary.get("workload") in FIXED_TRAFFIC:
        return tuple(m for m in METRICS if m not in SESSION_METRICS)
    return METRICS


def _configs(review: Review) -> list[dict]:
    d = deltas(review, DELTA_METRICS)
    shown = shown_metrics(review)
    out = []
    for i, (_, row) in enumerate(review.top.iterrows()):
        band = review.band(row)
        out.append({
            "label": row["label"], "system": row["system"], "point": int(row["point"]),
            "metrics": [(m, fmt(row[m])) for m in shown if m in row.index],
            "deploy": _deploy_card(row), "limits": _limits(row, review),
            "deltas": [(m, float(d.iloc[i][m]), _good(m, float(d.iloc[i][m])))
                       for m in DELTA_METRICS] if len(d) else [],
            "delta_text": ", ".join(f"{m} {float(d.iloc[i][m]):+.1f} %" for m in DELTA_METRICS)
            if len(d) else "",
            "error": f"±{band.interactivity_pct:.0f} % tok/s/user, ±{band.throughput_pct:.0f} % "
                     f"throughput and cost (median held-out error; {band.basis})",
        })  # fmt: skip
    return out


def _good(metric: str, change: float) -> bool:
    return change <= 0 if metric in LOWER_IS_BETTER else change >= 0


def _params(v) -> str | None:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return f"{float(v) / 1e9:,.0f}B"
    return None if v is None else str(v)


def _question(study: str | None) -> str:
    """The study README's bold **Question** paragraph, if it has one."""
    readme = conf_dir().parent / "studies" / str(study) / "README.md"
    if not study or not readme.is_file():
        return ""
    m = re.search(r"\*\*Question[^*]*\*\*(.*?)(\n\n|$)", readme.read_text(), re.S)
    text = " ".join(m.group(1).split()) if m else ""
    return text[:1].upper() + text[1:]


def _hardware_assumptions(names: list[str]) -> list[dict]:
    out = []
    for name in names:
        f = conf_dir() / "hardware" / f"{name}.yaml"
        if not f.is_file():
            continue
        raw = load_yaml(f.read_text())
        src = raw.get("sources") or {}
        rows = [(k, fmt(raw[k]), str(src.get(k, "")).strip()) for k in HW_SPECS if k in raw]
        out.append({"name": name, "title": raw.get("title", name), "rows": rows})
    return out


def _sourced(section: dict, keys) -> list[tuple[str, str, str]]:
    src = section.get("sources") or {}
    return [(k, fmt(section[k]), str(src.get(k, "")).strip()) for k in keys if k in section]


def build_context(review: Review, figures: list, files: list[str]) -> dict:
    run, s, cfg = review.run, review.run.summary, review.run.config
    hardware = sorted(review.errors)
    cal = load_yaml((conf_dir() / "calibration" / "default.yaml").read_text()).get("provenance", {})
    model_cfg = cfg.get("model") or {}
    first = review.top.iloc[0] if len(review.top) else None
    return {
        "title": run.title, "study": s.get("study"), "run": run.name, "version": __version__,
        "question": _question(s.get("study")) or run.title,
        "model": {"name": s.get("model"), "id": model_cfg.get("id"), "source": model_cfg.get("source"),
                  **{k: _params(v) for k, v in (model_cfg.get("published") or {}).items() if k != "source"}},
        "workload": {"name": s.get("workload"), "title": _workload_title(cfg)},
        "search_text": ", ".join(f"{k} {fmt(s.get(k))}" for k in ("engine", "space_size", "evaluated",
                                 "feasible", "frontier", "seconds") if k in s),
        "objectives": ", ".join(("max " if o.maximize else "min ") + o.metric for o in review.objectives),
        "constraints": bounds_text(review.constraints) or "none",
        "target": bounds_text(review.best_where) or "none", "rank": review.rank.metric,
        "recommendation": _recommendation(review, first), "note": review.note,
        "configs": _configs(review), "baseline": _baseline(review),
        "accuracy": accuracy_table(hardware).to_dict("records"),
        "hardware": _hardware_assumptions(hardware),
        "cost": _sourced(cfg.get("cost") or {}, COST_KEYS),
        "calibration": {k: cal.get(k) for k in ("date", "rows_used", "method", "command")},
        "sensitivity": _sensitivity_lines(review), "whatif": _whatif(review),
        "figures": figures, "files": files,
    }  # fmt: skip


def _workload_title(cfg: dict) -> str:
    """``traffic:`` (fixed-length benchmark requests) replaces the workload preset when given."""
    t = cfg.get("traffic")
    if t:
        if t.get("dataset"):
            return (f"requests of dataset {t['dataset']} (conf/dataset/), "
                    f"{fmt(t.get('prefix', 0))} cached prefix")  # fmt: skip
        spread = any(t.get(k) for k in ("isl_cv", "osl_cv"))
        return (f"{'variable' if spread else 'fixed'}-length requests, {fmt(t.get('isl'))} input "
                f"/ {fmt(t.get('osl'))} output tokens"
                + (f" (cv {fmt(t.get('isl_cv', 0))} / {fmt(t.get('osl_cv', 0))})" if spread else "")
                + f", {fmt(t.get('prefix', 0))} cached prefix")  # fmt: skip
    return str((cfg.get("workload") or {}).get("title") or "")


def _recommendation(review: Review, first) -> str:
    if first is None:
        return "No design meets the constraints: relax them or widen the space (see summary.json)."
    r = review.rank
    text = (f"{first['label']}: {first['system']} ({first['software']}) at {fmt(first['tok_s_user'])} "
            f"tok/s/user, ${fmt(first['usd_per_mtok'])}/Mtok, {fmt(first['tok_s_per_unit'])} tok/s "
            f"per GPU, {fmt(first['units'])} accelerators — the {'highest' if r.maximize else 'lowest'} "
            f"{r.metric} on the frontier")  # fmt: skip
    if review.best_where:
        text += f" with {bounds_text(review.best_where)}"
    if review.baseline is not None and review.baseline["point"] != first["point"]:
        b = float(review.baseline[r.metric])
        text += f"; {100 * (float(first[r.metric]) - b) / abs(b):+.0f} % {r.metric} vs the baseline"
    return text + "."


def _baseline(review: Review) -> dict | None:
    b = review.baseline
    if b is None:
        return None
    metrics = [(m, fmt(b[m])) for m in shown_metrics(review) if m in b.index]
    return {"note": review.baseline_note, "system": b["system"], "point": int(b["point"]),
            "metrics": metrics, "text": ", ".join(f"{m} {v}" for m, v in metrics)}  # fmt: skip


def _sensitivity_lines(review: Review) -> list[str]:
    from .figures.sensitivity import chosen_sensitivities

    t = chosen_sensitivities(review)
    lines = []
    for (label, metric), g in t.groupby(["label", "metric"], sort=False) if len(t) else ():
        g = g[np.abs(g["elasticity"]) > 1e-6].sort_values("elasticity", key=np.abs, ascending=False)
        if len(g):
            top = g.iloc[0]
            lines.append(f"{label}: {metric} moves most with {top['field']} (elasticity "
                         f"{top['elasticity']:+.3f}; {top['per_unit']:+.4g} per {top['unit']})")  # fmt: skip
    return lines


def _whatif(review: Review) -> dict | None:
    """The run's ``whatif`` table (``dse.search.whatif``) as the report's "What would change
    the answer": per losing system, each parameter's value at which it would tie the winner."""
    t = review.run.table("whatif")
    if t.empty:
        return None
    first = t.iloc[0]
    rows = []
    for _, r in t.iterrows():
        behind = r["gap_nominal_pct"]
        system = f"{r['system']} ({'+' if behind >= 0 else ''}{fmt(behind)} %)" \
            if np.isfinite(behind) else f"{r['system']} (misses the target)"  # fmt: skip
        if r["parameter"] in ("", "all"):
            answer = r["verdict"]
            if r["parameter"] == "all" and np.isfinite(r["gap_at_limit_pct"]) and r["verdict"] != "ties":
                answer += f" (still +{fmt(r['gap_at_limit_pct'])} %)"
            rows.append({"system": system, "parameter": r["label"] or "any", "nominal": "",
                         "answer": answer, "range": ""})  # fmt: skip
            continue
        unit = f" {r['unit']}" if r["unit"] not in ("fraction", "") else ""
        if r["verdict"] == "ties at":
            answer = f"**{fmt(r['tie_value'])}{unit}** ({fmt(r['change_pct'])} %)"
        elif r["verdict"] == "no value in range":
            left = r["gap_at_limit_pct"]
            answer = "no value in range" + (f" (still +{fmt(left)} % at the limit)"
                                            if np.isfinite(left) else " (target still missed)")  # fmt: skip
        else:
            answer = r["verdict"]
        rows.append({"system": system, "parameter": r["label"], "nominal": f"{fmt(r['nominal'])}{unit}",
                     "answer": answer, "range": f"{fmt(r['low'])}-{fmt(r['high'])}{unit}"})  # fmt: skip
    return {"winner": first["winner"], "score": fmt(first["winner_score"]), "metric": first["rank_metric"],
            "rows": rows}  # fmt: skip
