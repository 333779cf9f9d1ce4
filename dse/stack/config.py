"""Config → system designs: read the ``system`` / ``software`` groups and validate them.

A system config names hardware for each pool; a software config names precisions and a
speculation method. ``system_values`` turns one of each (plus overrides) into the float fields
of a :class:`~dse.model.system_design.SystemDesign`, resolving names to indices into the
stacked tables. Every error is one ``ValueError`` line that says what is wrong, where, and how
to fix it.
"""

from __future__ import annotations

import copy
import difflib
import functools
from pathlib import Path

from ..catalog import Catalog, conf_dir
from ..files import load_yaml
from ..model.design import DTYPE_BITS
from ..model.efficiency import DEFAULT_FRAMEWORK, framework_code
from ..model.hypothetical import HARDWARE_KNOBS
from ..model.speculation import SPEC_METHODS
from ..values import number

POOL_KEYS = {
    "decode": {"hardware", "units", "tp", "pp", "ep", "dp", "kvp"},
    "prefill": {"hardware", "units", "tp", "ep", "dp"},
    "ffn": {"hardware", "units", "tp", "pp", "microbatches"},
}
SYSTEM_KEYS = {
    "title", "decode", "prefill", "ffn", "host", "tiers", "hypothetical", "sources", "notes",
}  # fmt: skip
TIER_KEYS = {"host_gb_per_gpu", "storage_tb", "storage_gbs"}
SOFTWARE_KEYS = {
    "title", "weight_dtype", "act_dtype", "kv_dtype", "batch", "speculation", "prompt_cache",
    "framework", "sources", "notes",
}  # fmt: skip
SPEC_KEYS = {"method", "k", "draft_params_b"}


def group_names(group: str, root: Path | None = None) -> list[str]:
    return sorted(p.stem for p in ((root or conf_dir()) / group).glob("*.yaml"))


def load_group(group: str, name: str, root: Path | None = None) -> dict:
    """The mapping in ``conf/<group>/<name>.yaml`` (unknown names get a did-you-mean)."""
    return copy.deepcopy(_load_group(group, str(name), root or conf_dir()))


@functools.lru_cache(maxsize=256)
def _load_group(group: str, name: str, root: Path) -> dict:
    path = root / group / f"{name}.yaml"
    if not path.exists():
        known = group_names(group, root)
        close = difflib.get_close_matches(str(name), known, n=2, cutoff=0.5)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unknown {group} {name!r}{hint} (known: {', '.join(known)})")
    with open(path) as f:
        data = load_yaml(f) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at top level")
    return data


def _check_keys(where: str, data: dict, allowed: set[str]) -> None:
    for key in data:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"{where}: unknown key {key!r}{hint} (allowed: {sorted(allowed)})")


def _dtype(where: str, value, default: str | None) -> float:
    if value is None:
        if default is None:
            return 0.0
        value = default
    key = str(value).strip().lower()
    if key not in DTYPE_BITS:
        raise ValueError(f"{where}={value!r} is not one of {'|'.join(DTYPE_BITS)}")
    return DTYPE_BITS[key]


def _pool(name: str, data: dict | None, catalog: Catalog, hw_index: dict) -> dict[str, float]:
    where = f"system.{name}"
    if not data:
        return {}
    _check_keys(where, data, POOL_KEYS[name])
    if "hardware" not in data:
        raise ValueError(f"{where}: give hardware (a name in conf/hardware/)")
    entry = catalog.accelerator(str(data["hardware"]))
    out = {"hw": float(hw_index[entry.name])}
    for key in POOL_KEYS[name] - {"hardware"}:
        default = {"units": 0.0, "microbatches": 2.0}.get(key, 1.0)
        minimum = 0.0 if key == "units" else 1.0
        out[key] = number(f"{where}.{key}", data.get(key, default), minimum=minimum, integer=True)
    worker = out["tp"] * out.get("pp", 1.0) * out.get("dp", 1.0)
    if name != "ffn" and out["units"] > 0 and out["units"] % worker:
        raise ValueError(
            f"{where}.units={out['units']:g} is not a multiple of one worker "
            f"(tp*pp*dp={worker:g}); change units or the layout"
        )
    if name == "decode" and out["tp"] % out["kvp"]:
        raise ValueError(
            f"{where}.kvp={out['kvp']:g} does not divide tp={out['tp']:g} (KV-parallel decode "
            "splits each TP group into kvp slices); pick a kvp that divides tp"
        )
    if name == "decode" and out["units"] <= 0:
        raise ValueError(f"{where}.units must be >= one worker (tp*pp*dp={worker:g})")
    if name == "ffn" and out["units"] > 0 and out["units"] < out["tp"] * out["pp"]:
        raise ValueError(f"{where}.units={out['units']:g} is below tp*pp; add units")
    return out


def system_values(
    system: dict,
    software: dict,
    catalog: Catalog,
    model_index: int,
    hw_index: dict[str, int],
    host_index: dict[str, int],
) -> dict[str, float]:
    """SystemDesign field values from one system and one software config."""
    _check_keys("system", system, SYSTEM_KEYS)
    _check_keys("software", software, SOFTWARE_KEYS)
    dec = _pool("decode", system.get("decode"), catalog, hw_index)
    if not dec:
        raise ValueError("system: give a decode pool (decode: {hardware: ..., units: ...})")
    pre = _pool("prefill", system.get("prefill"), catalog, hw_index)
    ffn = _pool("ffn", system.get("ffn"), catalog, hw_index)
    host = str(system.get("host") or catalog.hardware[_name(hw_index, dec["hw"])].host or "")
    if host not in host_index:
        close = difflib.get_close_matches(host, sorted(host_index), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"system.host={host!r} is not a host tier{hint} ({sorted(host_index)})")
    tiers = system.get("tiers") or {}
    _check_keys("system.tiers", tiers, TIER_KEYS)
    spec = software.get("speculation") or {}
    _check_keys("software.speculation", spec, SPEC_KEYS)
    method = str(spec.get("method", "none")).strip().lower()
    if method not in SPEC_METHODS:
        raise ValueError(f"software.speculation.method={method!r} is not one of {SPEC_METHODS}")
    k = number("software.speculation.k", spec.get("k", 0), integer=True)
    weight = _dtype("software.weight_dtype", software.get("weight_dtype"), "fp8")
    knobs = system.get("hypothetical") or {}
    _check_keys("system.hypothetical", knobs, set(HARDWARE_KNOBS))
    scales = {}
    for knob in HARDWARE_KNOBS:
        scales[knob] = number(f"system.hypothetical.{knob}", knobs.get(knob, 1.0))
        if scales[knob] <= 0:
            raise ValueError(f"system.hypothetical.{knob} must be > 0 (1.0 = the catalog chip)")
    return dict(
        model=float(model_index), decode_hw=dec["hw"], prefill_hw=pre.get("hw", dec["hw"]),
        ffn_hw=ffn.get("hw", dec["hw"]), host=float(host_index[host]),
        weight_bits=weight, act_bits=_dtype("software.act_dtype", software.get("act_dtype"), None),
        kv_bits=_dtype("software.kv_dtype", software.get("kv_dtype"), "fp8"),
        tp=dec["tp"], pp=dec["pp"], ep=dec["ep"], dp=dec["dp"], kvp=dec["kvp"],
        decode_units=dec["units"],
        batch=number("software.batch", software.get("batch", 0)),
        prefill_tp=pre.get("tp", 1.0), prefill_ep=pre.get("ep", 1.0),
        prefill_dp=pre.get("dp", 1.0), prefill_units=pre.get("units", 0.0),
        ffn_tp=ffn.get("tp", 1.0), ffn_pp=ffn.get("pp", 1.0), ffn_units=ffn.get("units", 0.0),
        microbatches=ffn.get("microbatches", 2.0),
        spec_method=float(SPEC_METHODS.index(method)), spec_k=k if method != "none" else 0.0,
        draft_params_b=number("software.speculation.draft_params_b", spec.get("draft_params_b", 1.0)),
        prompt_cache=1.0 if software.get("prompt_cache", True) else 0.0,
        framework=_framework(software.get("framework", DEFAULT_FRAMEWORK)),
        host_gb_per_gpu=number("system.tiers.host_gb_per_gpu", tiers.get("host_gb_per_gpu", 0)),
        storage_tb=number("system.tiers.storage_tb", tiers.get("storage_tb", 0)),
        storage_gbs=number("system.tiers.storage_gbs", tiers.get("storage_gbs", 0)),
        **scales,
    )  # fmt: skip


def _framework(value) -> float:
    try:
        return framework_code(str(value))
    except ValueError as e:
        raise ValueError(f"software.framework: {e}") from None


def _name(index: dict[str, int], value: float) -> str:
    return next(n for n, i in index.items() if i == int(value))
