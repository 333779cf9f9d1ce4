"""The ``dse predict`` scenario schema: parse, default and validate rows (plain Python, no JAX).

Each row becomes either a :class:`Scenario` (numbers ready for the model, plus the list of
defaults that were applied, so nothing is assumed silently) or an error string that says what
is wrong, where, and how to fix it. A bad row never stops the batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from ..catalog import Catalog, CatalogError
from ..model.design import DTYPE_BITS, HARNESSES, MODES, PHASES
from ..model.efficiency import DEFAULT_FRAMEWORK, FRAMEWORK_ALIASES, framework_code
from ..model.workload import MAX_LENGTH_CV
from ..values import number

INPUT_COLUMNS = (
    "id", "model", "hardware", "gpus", "tp", "pp", "ep", "dp", "kvp", "weight_dtype",
    "kv_dtype", "phase", "mode", "batch", "concurrency", "isl", "osl", "prefix", "spec_k",
    "spec_tokens_per_step", "prefill_gpus", "decode_gpus", "act_dtype", "framework", "harness",
    "dataset", "isl_cv", "osl_cv", "length_corr",
)  # fmt: skip
OUTPUT_COLUMNS = (
    "ttft_ms",
    "tpot_ms",
    "tok_s_user",
    "tok_s_gpu",
    "memory_gb",
    "feasible",
    "reason",
    "bound",
)
# Percentiles over requests of TTFT and TPOT (``dse.model.tails``).
PERCENTILE_COLUMNS = ("ttft_ms_p50", "ttft_ms_p90", "ttft_ms_p99",
                      "tpot_ms_p50", "tpot_ms_p90", "tpot_ms_p99")  # fmt: skip
EXTRA_OUTPUT_COLUMNS = ("input_tok_s_gpu", "batch_used", "max_batch", *PERCENTILE_COLUMNS,
                        "assumed")  # fmt: skip


@dataclass
class Scenario:
    model: str  # canonical HF id
    hardware: str
    values: dict[str, float]  # Design fields
    assumed: list[str] = field(default_factory=list)


def _blank(v) -> bool:
    return (
        v is None
        or (isinstance(v, float) and math.isnan(v))
        or (isinstance(v, str) and not v.strip())
    )


# Largest values a row may hold (far beyond any deployment, and small enough that every metric
# stays a finite float64): tokens per request, sequences in flight, GPUs, draft tokens.
MAX_TOKENS = 1e8
MAX_SEQUENCES = 1e8
MAX_GPUS = 1e6
MAX_SPEC_K = 64.0


def _number(
    row: dict,
    col: str,
    *,
    integer: bool = False,
    minimum: float = 0.0,
    maximum: float = MAX_GPUS,
) -> float | None:
    v = row.get(col)
    if _blank(v):
        return None
    return number(
        f"column {col}", v, minimum=minimum, maximum=maximum, integer=integer, blank_ok=True
    )


def _choice(row: dict, col: str, options, default: str) -> tuple[str, bool]:
    v = row.get(col)
    if _blank(v):
        return default, True
    s = str(v).strip().lower()
    if s not in options:
        raise ValueError(f"column {col}={v!r} is not one of {'|'.join(options)}")
    return s, False


def parse_row(row: dict, catalog: Catalog, *, means: bool = False) -> Scenario:
    """Validate one row; raises ``ValueError``/``CatalogError`` with a one-line message.
    ``means``: the row reports a measurement, whose concurrency may be a mean number of requests
    in flight (MLPerf Server's Little's-law figure); a scenario's is a whole count of clients."""
    if _blank(row.get("model")):
        raise ValueError("column model is blank; give a Hugging Face id or alias from conf/model/")
    if _blank(row.get("hardware")):
        raise ValueError(
            "column hardware is blank; give a name from conf/hardware/ (e.g. h100_sxm)"
        )
    model = catalog.model(str(row["model"]))
    hw = catalog.accelerator(str(row["hardware"]))
    arch = model.arch
    assumed: list[str] = []

    phase, _ = _choice(row, "phase", PHASES, "serve")
    mode, _ = _choice(row, "mode", MODES, "agg")
    # Blank framework: a phase-isolated row asks what one step takes on the GPU (a static
    # batch, no scheduler: "static"); a serving row runs in the default engine.
    fw_default = "static" if phase in ("prefill", "decode") else DEFAULT_FRAMEWORK
    fw, fw_blank = _choice(row, "framework", tuple(FRAMEWORK_ALIASES), fw_default)
    if fw_blank:
        assumed.append(f"framework={fw_default}")
    # Blank harness: a client through the framework's API server, as deployments are reached.
    harness, harness_blank = _choice(row, "harness", HARNESSES, "http")
    if harness_blank and phase == "serve":
        assumed.append("harness=http")
    wdt, w_default = _choice(row, "weight_dtype", ("bf16", "fp16", "fp8", "fp4"), "bf16")
    if w_default:
        assumed.append("weight_dtype=bf16")
    # Blank kv_dtype: FP8 KV with FP8/FP4 weights (what TRT-LLM/ModelOpt quantized checkpoints
    # ship), else the weights' 16-bit type.
    kv_fallback = "fp8" if wdt in ("fp8", "fp4") else "bf16"
    kdt, k_default = _choice(row, "kv_dtype", ("bf16", "fp16", "fp8", "fp4"), kv_fallback)
    if k_default:
        assumed.append(f"kv_dtype={kv_fallback}")
    # Blank act_dtype: activations as wide as the weights (W8A8, W4A4), the quantized recipes'
    # default; bf16 activations with fp4 weights give W4A16 on the BF16 peak.
    adt, a_default = _choice(row, "act_dtype", ("bf16", "fp16", "fp8", "fp4"), wdt)

    tp = _number(row, "tp", integer=True, minimum=1)
    pp = _number(row, "pp", integer=True, minimum=1)
    dp = _number(row, "dp", integer=True, minimum=1)
    ep = _number(row, "ep", integer=True, minimum=1)
    gpus = _number(row, "gpus", integer=True, minimum=1)
    prefill_gpus = _number(row, "prefill_gpus", integer=True) or 0.0
    decode_gpus = _number(row, "decode_gpus", integer=True) or 0.0
    if pp is None:
        pp = 1.0
    if dp is None:
        dp = 1.0
        if tp is None and ep is not None and ep > 1 and gpus is not None and mode == "agg":
            dp = gpus / pp  # "EP n" with no TP/DP given: attention data parallel (DEP)
            assumed.append(f"dp={dp:g} (from ep)")
    if tp is None and mode == "disagg" and not decode_gpus:
        raise ValueError(
            "mode=disagg row gives neither tp nor decode_gpus, so the decode worker's layout is unknown; set tp (and dp/ep)"
        )
    if tp is None:
        worker = gpus if gpus is not None and mode == "agg" else (decode_gpus or gpus)
        if worker is None:
            raise ValueError("give tp (or gpus) so the parallel layout is known")
        tp = max(worker / (pp * dp), 1.0)
        if tp != int(tp):
            raise ValueError(
                f"gpus={worker:g} is not divisible by pp*dp={pp * dp:g}; fix gpus, pp or dp"
            )
        assumed.append(f"tp={tp:g} (from gpus)")
    if ep is None:
        ep = 1.0
        if arch_is_moe(arch):
            assumed.append("ep=1")
    layout = tp * pp * dp
    if gpus is not None and gpus != layout:
        disagg_total = mode == "disagg" and gpus == prefill_gpus + decode_gpus
        if not disagg_total:
            raise ValueError(f"gpus={gpus:g} but tp*pp*dp={layout:g}; make gpus equal tp*pp*dp")
    experts = float(arch.num_experts)
    if experts > 0 and ep > experts:
        raise ValueError(
            f"ep={ep:g} exceeds the model's {experts:g} experts; use ep <= {experts:g}"
        )
    if experts == 0 and ep > 1:
        raise ValueError(f"ep={ep:g} but {model.id} is a dense model; set ep=1")
    if ep > 1 and (tp * dp) % ep:
        raise ValueError(
            f"ep={ep:g} does not divide tp*dp={tp * dp:g}; EP is laid over the tp*dp ranks"
        )
    heads = float(arch.num_attention_heads)
    if heads % tp:
        raise ValueError(f"tp={tp:g} does not divide the {heads:g} attention heads of {model.id}")
    if pp > float(arch.num_layers):
        raise ValueError(f"pp={pp:g} exceeds the model's {float(arch.num_layers):g} layers")
    # KV-parallel decode (Helix) splits each TP group into kvp slices (dse.model.layer).
    kvp = _number(row, "kvp", integer=True, minimum=1) or 1.0
    if tp % kvp:
        raise ValueError(f"kvp={kvp:g} does not divide tp={tp:g}; pick a kvp that divides tp")

    isl = _number(row, "isl", integer=True, minimum=1, maximum=MAX_TOKENS)
    osl = _number(row, "osl", integer=True, minimum=1, maximum=MAX_TOKENS)
    # A named dataset (conf/dataset/) gives the spread of the lengths, and their means where
    # the row leaves isl/osl blank; explicit isl_cv/osl_cv/length_corr cells win over it.
    dataset = None if _blank(row.get("dataset")) else catalog.dataset(str(row["dataset"]))
    if dataset is not None and isl is None:
        isl = dataset.isl
        assumed.append(f"isl={isl:g} (mean of dataset {dataset.name})")
    if dataset is not None and osl is None and phase != "prefill":
        osl = dataset.osl
        assumed.append(f"osl={osl:g} (mean of dataset {dataset.name})")
    if isl is None:
        isl = 1024.0
        assumed.append("isl=1024")
    if osl is None:
        osl = 1.0 if phase == "prefill" else 1024.0
        if phase != "prefill":
            assumed.append("osl=1024")
    shape = {}
    for col, lo, hi in (("isl_cv", 0.0, MAX_LENGTH_CV), ("osl_cv", 0.0, MAX_LENGTH_CV),
                        ("length_corr", -1.0, 1.0)):  # fmt: skip
        v = _number(row, col, minimum=lo, maximum=hi)
        shape[col] = v if v is not None else getattr(dataset, col, 0.0)
    if dataset is not None:
        assumed.append(
            f"length spread of dataset {dataset.name} (cv in {shape['isl_cv']:.2f}, "
            f"out {shape['osl_cv']:.2f}, corr {shape['length_corr']:.2f})"
        )
    prefix = _number(row, "prefix", integer=True, maximum=MAX_TOKENS) or 0.0
    if prefix >= isl:
        raise ValueError(
            f"prefix={prefix:g} must be below isl={isl:g} (at least one uncached token)"
        )
    spec_k = _number(row, "spec_k", integer=True, maximum=MAX_SPEC_K) or 0.0
    tau = _number(row, "spec_tokens_per_step", maximum=MAX_SPEC_K + 1)
    if tau is not None and tau < 1:
        raise ValueError(f"spec_tokens_per_step={tau:g} must be >= 1 (it counts the bonus token)")
    if tau is not None and spec_k == 0 and tau > 1:
        raise ValueError(f"spec_tokens_per_step={tau:g} > 1 needs spec_k > 0")
    if tau is not None and tau > spec_k + 1:
        raise ValueError(f"spec_tokens_per_step={tau:g} exceeds spec_k+1={spec_k + 1:g}")
    if spec_k > 0 and tau is None:
        assumed.append("spec acceptance 0.75/token")

    batch = _number(row, "batch", integer=True, minimum=1, maximum=MAX_SEQUENCES)
    concurrency = _number(row, "concurrency", integer=not means, maximum=MAX_SEQUENCES)
    if phase == "prefill" and batch is None:
        batch = max(1.0, math.floor(8192 / max(isl - prefix, 1.0))) * dp
        assumed.append(f"batch={batch:g} (8192-token prefill chunks)")
    if phase == "decode" and batch is None:
        assumed.append("batch=largest that fits")
    if phase == "serve" and concurrency is None:
        assumed.append("saturating (no concurrency)")
    if mode == "disagg" and phase == "serve":
        if prefill_gpus <= 0 or decode_gpus < layout:
            raise ValueError(
                "mode=disagg serve rows need prefill_gpus > 0 and decode_gpus >= tp*pp*dp"
            )
        if decode_gpus % layout:
            raise ValueError(
                f"decode_gpus={decode_gpus:g} is not a multiple of one decode worker (tp*pp*dp={layout:g})"
            )
        assumed.append(
            "prefill workers: decode layout style, at most one decode worker's GPUs, pp=1"
        )
    elif prefill_gpus or decode_gpus:
        assumed.append("prefill_gpus/decode_gpus ignored (only used by mode=disagg serve rows)")
    if concurrency == 0 and phase == "serve":
        assumed.append("saturating (concurrency 0)")
    if not hw_has_fp4(hw) and wdt == "fp4":
        assumed.append(f"fp4 weights run as W4A16 on BF16 units ({hw.name} has no FP4)")

    values = dict(
        tp=tp, pp=pp, ep=ep, dp=dp, kvp=kvp, weight_bits=DTYPE_BITS[wdt],
        kv_bits=DTYPE_BITS[kdt],
        phase=float(PHASES.index(phase)), mode=float(MODES.index(mode)),
        batch=batch or 0.0, concurrency=concurrency or 0.0, isl=isl, osl=osl, **shape,
        prefix=prefix,
        spec_k=spec_k, spec_tokens_per_step=tau or 0.0, prefill_gpus=prefill_gpus,
        decode_gpus=decode_gpus, act_bits=0.0 if a_default else DTYPE_BITS[adt],
        framework=framework_code(fw), harness=float(HARNESSES.index(harness)),
    )  # fmt: skip
    return Scenario(model=model.id, hardware=hw.name, values=values, assumed=assumed)


def hw_has_fp4(entry) -> bool:
    return float(entry.hw.fp4_tflops) > 0


def check_columns(columns) -> tuple[list[str], list[str]]:
    """(errors, warnings) about a scenario table's header: duplicated schema columns are errors
    (pandas renames the second 'tp' to 'tp.1' and its values would be lost); names that look
    like a misspelt schema column are warned about (they are carried through, not used)."""
    import difflib
    import re

    errors, warnings = [], []
    known = set(INPUT_COLUMNS) | set(STACK_INPUT_COLUMNS)
    for c in columns:
        name = str(c)
        m = re.fullmatch(r"(.+)\.(\d+)", name)
        if m and m.group(1) in known:
            errors.append(f"column {m.group(1)!r} appears more than once; keep one")
        elif name not in known and not name.startswith("measured_"):
            close = difflib.get_close_matches(name.lower(), sorted(known), n=1, cutoff=0.8)
            if close:
                warnings.append(
                    f"column {name!r} is not in the schema (did you mean {close[0]!r}?); carried through unused"
                )
    return errors, warnings


def arch_is_moe(arch) -> bool:
    return float(arch.num_experts) > 0


# -- stack rows: a row that names a ``workload`` (a ``conf/workload`` preset) or a ``system``
# (a ``conf/system`` hardware mix) is predicted with the whole-system model
# (``dse.predict.stack_rows``); these are its columns.
STACK_INPUT_COLUMNS = (
    "workload", "system", "software", "prefill_hardware", "ffn_hardware", "prefill_tp",
    "prefill_ep", "prefill_dp", "ffn_units", "ffn_tp", "ffn_pp", "microbatches", "spec_method",
    "draft_params_b", "prompt_cache", "host", "host_gb_per_gpu", "storage_tb", "storage_gbs",
)  # fmt: skip
# Instance-schema columns that also mean something for a stack row (decode pool / software).
SHARED_COLUMNS = {
    "tp": "tp", "pp": "pp", "ep": "ep", "dp": "dp", "kvp": "kvp", "batch": "batch",
    "spec_k": "spec_k",
    "decode_gpus": "decode_units", "prefill_gpus": "prefill_units",
}  # fmt: skip
NUMERIC_OVERRIDES = {
    "prefill_tp": "prefill_tp", "prefill_ep": "prefill_ep", "prefill_dp": "prefill_dp",
    "ffn_units": "ffn_units", "ffn_tp": "ffn_tp", "ffn_pp": "ffn_pp",
    "microbatches": "microbatches", "draft_params_b": "draft_params_b",
    "host_gb_per_gpu": "host_gb_per_gpu", "storage_tb": "storage_tb", "storage_gbs": "storage_gbs",
    **SHARED_COLUMNS,
}  # fmt: skip
# Columns that count something: whole numbers from a minimum up to the schema's physical limits
# (schema.MAX_*), so a stack row's batch=1e30 is refused instead of capped silently.
COUNT_LIMITS = {
    "tp": (1, MAX_GPUS), "pp": (1, MAX_GPUS), "ep": (1, MAX_GPUS), "dp": (1, MAX_GPUS),
    "kvp": (1, MAX_GPUS), "prefill_tp": (1, MAX_GPUS), "prefill_ep": (1, MAX_GPUS),
    "prefill_dp": (1, MAX_GPUS),
    "ffn_tp": (1, MAX_GPUS), "ffn_pp": (1, MAX_GPUS), "ffn_units": (0, MAX_GPUS),
    "decode_gpus": (1, MAX_GPUS), "prefill_gpus": (0, MAX_GPUS), "microbatches": (1, 1024),
    "batch": (0, MAX_SEQUENCES), "spec_k": (0, MAX_SPEC_K),
}  # fmt: skip
STACK_OUTPUT_COLUMNS = (
    "hit_rate", "output_tok_s", "requests_s", "sessions", "uncached_tokens", "restore_ms",
    "units", "prefill_utilization", "usd_per_hour", "usd_per_unit_hour", "power_kw", "usd_per_mtok",
    "usd_per_mtok_output", "usd_per_mtok_uncached", "usd_per_mtok_cached", "usd_per_session",
    "tok_s_per_mw", "accuracy_penalty_pct",
)  # fmt: skip


def is_stack_row(row: dict) -> bool:
    return not _blank(row.get("workload")) or not _blank(row.get("system"))


__all__ = ["INPUT_COLUMNS", "OUTPUT_COLUMNS", "Scenario", "check_columns", "parse_row"]


def parse_frame(
    df: pd.DataFrame, catalog: Catalog, *, means: bool = False
) -> tuple[list[Scenario | None], list[str]]:
    """Each row parsed (``schema.parse_row``; ``means``: measured rows) or its error line."""
    scenarios, errors = [], []
    for i, row in enumerate(df.to_dict("records")):
        try:
            scenarios.append(parse_row(row, catalog, means=means))
            errors.append("")
        except (ValueError, CatalogError) as e:
            rid = row.get("id")
            where = f"row {i + 2}" + (f" (id {rid})" if isinstance(rid, str) and rid else "")
            scenarios.append(None)
            errors.append(f"{where}: {e}")
    return scenarios, errors
