"""A design space: a union of discrete products plus continuous ranges, enumerated lazily.

``conf/space/<name>.yaml`` declares it::

    choices:                      # discrete fields shared by every subspace
      software: [nvfp4_mtp, default]
      batch: [1, 4, 16, 64]
    systems:                      # one subspace per system config; its own fields win
      gb200_nvl72: {}
      vr200_lpx_afd: {ffn_units: [2304, 3072], microbatches: [1, 2]}
      vr200_lpx_decode:           # a list: one subspace per entry (layouts whose fields are tied)
        - {tp: [48], decode_units: [2928]}
        - {tp: [64], decode_units: [3904]}
    continuous:                   # floats: Optuna samples them, exhaustive walks ``steps``
      hbm_bw_scale: {low: 0.5, high: 2.0, steps: 4}

Without ``systems`` the space is one product and ``choices`` must name ``system``. Fields are
SystemDesign fields or the categorical ``system`` / ``software``; hardware, host and speculation
fields may be given by name (resolved in :mod:`dse.search.evaluate`).

Point ``i`` lies in the product whose cumulative size range holds it and is decoded in mixed
radix inside it (last field fastest, continuous grid fields last), so a sweep walks
``range(size)`` in fixed-size chunks and never holds the product in memory. Per-system
subspaces matter: an LPX pool's chip counts mean nothing to a GPU rack, and a product over both
would waste most of its points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..values import number

SPACE_KEYS = {"title", "choices", "systems", "continuous", "notes", "sources"}
RANGE_KEYS = {"low", "high", "steps", "log"}
# Fields that count accelerators, ranks or steps: whole numbers at least this large, whatever
# the model (model-dependent rules such as tp dividing the attention heads are per-point
# reasons, dse/model/system_feasibility.py, so a sweep over tp still runs and marks the bad points). Other
# numeric fields are checked finite and >= 0 where names are resolved (dse/search/evaluate.py).
COUNT_FIELDS: dict[str, int] = {
    "tp": 1, "pp": 1, "ep": 1, "dp": 1, "kvp": 1, "decode_units": 1,
    "prefill_tp": 1, "prefill_ep": 1, "prefill_dp": 1, "prefill_units": 0,
    "ffn_tp": 1, "ffn_pp": 1, "ffn_units": 0, "microbatches": 1, "spec_k": 0,
    "batch": 0,  # sequences per decode worker (0: the most that fit)
}  # fmt: skip


@dataclass(frozen=True)
class Continuous:
    low: float
    high: float
    steps: int = 3  # grid points for exhaustive sweeps
    log: bool = False

    def grid(self) -> np.ndarray:
        if self.steps <= 1:
            return np.array([0.5 * (self.low + self.high)])
        if self.log:
            return np.geomspace(self.low, self.high, self.steps)
        return np.linspace(self.low, self.high, self.steps)


@dataclass(frozen=True)
class Product:
    """One subspace: the cartesian product of ``choices`` (discrete, then continuous grids)."""

    name: str  # the system config it belongs to ("" without per-system subspaces)
    fields: tuple[str, ...]
    choices: tuple[tuple, ...]
    # Unique among the space's products: the system name, with ``[i]`` when the system lists
    # several subspaces (Optuna's parameter names and its subspace choice need one per product).
    label: str = ""

    @property
    def key(self) -> str:
        return self.label or self.name

    @property
    def size(self) -> int:
        return math.prod(len(c) for c in self.choices)

    def indices(self, local: np.ndarray) -> dict[str, np.ndarray]:
        out, ids = {}, np.asarray(local, dtype=np.int64)
        for name, values in zip(reversed(self.fields), reversed(self.choices)):
            out[name] = ids % len(values)
            ids = ids // len(values)
        return {f: out[f] for f in self.fields}


@dataclass(frozen=True)
class Space:
    products: tuple[Product, ...]
    continuous: tuple[tuple[str, Continuous], ...] = ()

    @classmethod
    def from_mapping(cls, mapping: dict) -> Space:
        """From a plain ``{field: [values]}`` mapping (one product) or a space config."""
        mapping = dict(mapping or {})
        if not mapping:
            raise ValueError("the space is empty; give at least one field with a list of values")
        if not set(mapping) & {"choices", "systems", "continuous"}:
            mapping = {"choices": mapping}
        unknown = set(mapping) - SPACE_KEYS
        if unknown:
            raise ValueError(
                f"space: unknown key(s) {sorted(unknown)}; allowed {sorted(SPACE_KEYS)}"
            )
        shared = _lists("space.choices", mapping.get("choices") or {})
        continuous = tuple(
            (str(k), _range(f"space.continuous.{k}", v))
            for k, v in (mapping.get("continuous") or {}).items()
        )
        counts = sorted({k for k, _ in continuous} & set(COUNT_FIELDS))
        if counts:
            raise ValueError(
                f"space.continuous: {counts} count accelerators, ranks or steps and cannot be "
                "continuous; list whole values under choices instead"
            )
        systems = mapping.get("systems")
        if systems is None:
            if "system" not in shared:
                raise ValueError("space: name the system(s): choices.system: [...] or systems:")
            groups = [("", "", shared)]
        else:
            if isinstance(systems, (list, tuple)):
                systems = {name: {} for name in systems}
            if not isinstance(systems, dict) or not systems:
                raise ValueError("space.systems: give a list or mapping of system config names")
            if "system" in shared:
                raise ValueError("space: give systems either in choices.system or systems:")
            # A system may list several mappings: one subspace each, for fields that only make
            # sense together (an LPX pool's tp and its chip count).
            groups = [
                (str(n), label, {"system": (str(n),), **shared, **_lists(where, entry)})
                for n, own in systems.items()
                for label, (where, entry) in _entries(str(n), f"space.systems.{n}", own)
            ]
        grids = tuple((k, tuple(float(x) for x in c.grid())) for k, c in continuous)
        products = tuple(
            Product(name, tuple(g) + tuple(k for k, _ in grids),
                    tuple(g.values()) + tuple(v for _, v in grids), label)
            for name, label, g in groups
        )  # fmt: skip
        for p in products:
            dup = set(p.fields[: len(p.fields) - len(grids)]) & {k for k, _ in grids}
            if dup:
                raise ValueError(f"space: {sorted(dup)} given as both discrete and continuous")
        return cls(products, continuous)

    @property
    def size(self) -> int:
        return sum(p.size for p in self.products)

    @property
    def offsets(self) -> np.ndarray:
        return np.cumsum([0] + [p.size for p in self.products])

    @property
    def fields(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for p in self.products:
            seen.update(dict.fromkeys(p.fields))
        return tuple(seen)

    def locate(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(product index, index inside that product) of global point ids."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) and (ids.min() < 0 or ids.max() >= self.size):
            raise ValueError(f"point ids must lie in [0, {self.size})")
        product = np.searchsorted(self.offsets, ids, side="right") - 1
        return product, ids - self.offsets[product]

    def point(self, i: int) -> dict:
        """The field values of point ``i`` (names stay names)."""
        product, local = self.locate(np.array([i]))
        p = self.products[int(product[0])]
        idx = p.indices(local)
        return {f: c[int(idx[f][0])] for f, c in zip(p.fields, p.choices)}


def _entries(name: str, where: str, own) -> list[tuple[str, tuple[str, dict]]]:
    """A system's own fields as (label, (where, mapping)): one mapping, or a non-empty list of
    them (one subspace each, labelled ``name[i]``)."""
    if isinstance(own, (list, tuple)):
        if not own:
            raise ValueError(f"{where}: an empty list; give a mapping or a list of mappings")
        if len(own) > 1:
            return [(f"{name}[{i}]", (f"{where}[{i}]", e or {})) for i, e in enumerate(own)]
        own = own[0]
    return [("", (where, own or {}))]


def _lists(where: str, mapping) -> dict[str, tuple]:
    if not isinstance(mapping, dict):
        raise ValueError(f"{where}: expected a mapping of field -> list of values")
    out = {}
    for name, values in mapping.items():
        values = tuple(values) if isinstance(values, (list, tuple)) else (values,)
        if not values:
            raise ValueError(f"{where}.{name} has no values")
        if len(set(map(repr, values))) != len(values):
            raise ValueError(f"{where}.{name} lists a value twice: {list(values)}")
        if str(name) in COUNT_FIELDS:
            for v in values:
                _check_count(f"{where}.{name}", str(name), v)
        out[str(name)] = values
    return out


def _check_count(where: str, name: str, value) -> None:
    """A count field's value: a finite whole number >= its minimum (one-line error otherwise)."""
    low = COUNT_FIELDS[name]
    why = f"{name} counts accelerators, sequences, ranks or steps"
    number(where, value, minimum=low, integer=True, text_ok=False, why=why)


def _range(where: str, spec) -> Continuous:
    if isinstance(spec, (list, tuple)) and len(spec) == 2:
        spec = {"low": spec[0], "high": spec[1]}
    if not isinstance(spec, dict) or not {"low", "high"} <= set(spec):
        raise ValueError(f"{where}: give {{low: ..., high: ...}} (optional steps, log)")
    bad = set(spec) - RANGE_KEYS
    if bad:
        raise ValueError(f"{where}: unknown key(s) {sorted(bad)}; allowed {sorted(RANGE_KEYS)}")
    try:
        low, high = float(spec["low"]), float(spec["high"])
        steps = int(spec.get("steps", 3))
    except (TypeError, ValueError):
        raise ValueError(f"{where}: low/high must be numbers and steps an integer") from None
    if not (math.isfinite(low) and math.isfinite(high)) or low > high or steps < 1:
        raise ValueError(f"{where}: need finite low <= high and steps >= 1 (got {spec})")
    log = bool(spec.get("log", False))
    if log and low <= 0:
        raise ValueError(f"{where}: a log range needs low > 0")
    return Continuous(low, high, steps, log)
