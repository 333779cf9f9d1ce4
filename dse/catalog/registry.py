"""Load the YAML catalogs under ``conf/`` and resolve names (with "did you mean" on typos).

Data flows one way: YAML → :class:`CatalogEntry` (metadata + sources) → pytree
(:class:`Architecture` / :class:`Hardware`). Nothing here is traced by JAX.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import yaml

from ..files import conf_dir as conf_dir
from ..files import load_yaml
from ..jax_config import configure
from ..model.architecture import Architecture
from ..model.hardware import HARDWARE_FIELDS, HOST_FIELDS, LINK_LATENCY_FIELDS, Hardware, HostTier
from ..model.workload import MAX_LENGTH_CV
from ..values import number


class CatalogError(ValueError):
    """A bad name or a malformed catalog file; the message is one line saying what and how to fix."""


@dataclass(frozen=True)
class ModelEntry:
    id: str  # Hugging Face repo id
    alias: str  # file stem, e.g. "llama3.1-70b"
    aliases: tuple[str, ...]
    arch: Architecture
    published_total_params: float
    published_active_params: float | None
    raw: dict = field(repr=False, compare=False)


@dataclass(frozen=True)
class HardwareEntry:
    name: str
    title: str
    kind: str  # gpu | sram
    generation: str
    hw: Hardware
    host: str | None
    raw: dict = field(repr=False, compare=False)


@dataclass(frozen=True)
class HostEntry:
    name: str
    title: str
    values: dict[str, float]
    raw: dict = field(repr=False, compare=False)


@dataclass(frozen=True)
class DatasetEntry:
    """A benchmark dataset's request lengths: means and the spread the model reads
    (``Design.isl_cv/osl_cv/length_corr``)."""

    name: str  # file stem, e.g. "mlperf-deepseek-r1"
    title: str
    isl: float  # mean input tokens
    osl: float  # mean output tokens
    isl_cv: float
    osl_cv: float
    length_corr: float
    context_p99: float  # p99 of input + output tokens, as measured on the set
    raw: dict = field(repr=False, compare=False)


# Dataset fields and their ranges: (minimum, maximum). Coefficients of variation up to
# MAX_LENGTH_CV, correlations in [-1, 1].
DATASET_FIELDS = {
    "isl": (1.0, 1e8), "osl": (1.0, 1e8), "isl_cv": (0.0, MAX_LENGTH_CV),
    "osl_cv": (0.0, MAX_LENGTH_CV), "length_corr": (-1.0, 1.0), "context_p99": (1.0, 1e9),
}  # fmt: skip
_DATASET_METADATA = {"title", "samples", "sources", "notes"}


def _read_yaml(path: Path) -> dict:
    try:
        with open(path) as f:
            data = load_yaml(f)
    except yaml.YAMLError as e:
        raise CatalogError(
            f"{path}: not valid YAML ({e.__class__.__name__}); fix the syntax"
        ) from e
    if not isinstance(data, dict):
        raise CatalogError(f"{path}: expected a mapping at top level")
    return data


def _norm(name: str) -> str:
    return name.strip().lower().replace("_", "-")


class CatalogTables(NamedTuple):
    """Every model and accelerator of a catalog stacked once, in catalog order. Batched
    callers (``dse predict``, calibration, the system model) gather rows of these tables, so
    every caller runs the same compiled shapes whatever subset it uses."""

    model_ids: tuple[str, ...]
    archs: Architecture  # stacked: one row per model_ids entry
    hardware_names: tuple[str, ...]
    hws: Hardware  # stacked: one row per hardware_names entry

    def model_index(self, ids) -> np.ndarray:
        return np.array([self.model_ids.index(m) for m in ids], dtype=np.int32)

    def hardware_index(self, names) -> np.ndarray:
        return np.array([self.hardware_names.index(h) for h in names], dtype=np.int32)


class Catalog:
    """All models, accelerators and host tiers found under one ``conf/`` directory."""

    def __init__(self, root: Path | None = None):
        configure()  # float64 before the first array is built
        self.root = Path(root) if root is not None else conf_dir()
        self.models: dict[str, ModelEntry] = {}
        self.hardware: dict[str, HardwareEntry] = {}
        self.hosts: dict[str, HostEntry] = {}
        self.datasets: dict[str, DatasetEntry] = {}
        self._model_names: dict[str, str] = {}  # normalized name/alias -> canonical id
        self._load()

    def _load(self) -> None:
        for path in sorted((self.root / "model").glob("*.yaml")):
            data = _read_yaml(path)
            try:
                arch = Architecture.from_mapping(data["architecture"])
                published = data["published"]
                entry = ModelEntry(
                    id=data["id"],
                    alias=path.stem,
                    aliases=tuple(data.get("aliases", ())),
                    arch=arch,
                    published_total_params=float(published["total_params"]),
                    published_active_params=(
                        float(published["active_params"])
                        if published.get("active_params") is not None
                        else None
                    ),
                    raw=data,
                )
            except (KeyError, TypeError, ValueError) as e:
                raise CatalogError(f"{path}: {e}; see conf/model/README.md for the schema") from e
            self.models[entry.id] = entry
            for n in (entry.id, entry.alias, *entry.aliases, entry.id.split("/")[-1]):
                self._model_names[_norm(n)] = entry.id
        for path in sorted((self.root / "hardware").glob("*.yaml")):
            data = _read_yaml(path)
            kind = data.get("kind", "gpu")
            allowed = set(HOST_FIELDS if kind == "cpu" else HARDWARE_FIELDS) | _HW_METADATA
            _known_fields(path, data, allowed, "conf/hardware/README.md")
            try:
                if kind == "cpu":
                    vals = {k: float(data.get(k, d) or 0.0) for k, d in HOST_FIELDS.items()}
                    self.hosts[path.stem] = HostEntry(path.stem, data.get("title", ""), vals, data)
                    continue
                spec = {k: v for k, v in data.items() if k in HARDWARE_FIELDS}
                missing = [k for k in LINK_LATENCY_FIELDS if data.get(k) is None]
                if missing:
                    raise ValueError(
                        f"no {', '.join(missing)} (one-way link latency in us, with a source: "
                        "a measurement, or an ESTIMATE saying why)"
                    )
                hw = Hardware.from_mapping(spec, data["generation"], kind)
            except (KeyError, TypeError, ValueError) as e:
                raise CatalogError(
                    f"{path}: {e}; see conf/hardware/README.md for the schema"
                ) from e
            self.hardware[path.stem] = HardwareEntry(
                name=path.stem,
                title=data.get("title", path.stem),
                kind=kind,
                generation=data["generation"],
                hw=hw,
                host=data.get("host"),
                raw=data,
            )

        for path in sorted((self.root / "dataset").glob("*.yaml")):
            self.datasets[path.stem] = _dataset(path, _read_yaml(path))

    @functools.cached_property
    def tables(self) -> CatalogTables:
        from ..model.batched import stack

        models, hardware = tuple(self.models), tuple(self.hardware)
        return CatalogTables(
            models,
            stack([self.models[m].arch for m in models]),
            hardware,
            stack([self.hardware[h].hw for h in hardware]),
        )

    # ----- name resolution -------------------------------------------------------------------
    def model(self, name: str) -> ModelEntry:
        key = _norm(str(name))
        if key in self._model_names:
            return self.models[self._model_names[key]]
        raise CatalogError(_unknown("model", name, list(self._model_names), "conf/model/"))

    def host_tier(self, name: str) -> HostTier:
        """The host CPU/memory tier ``name`` (a ``kind: cpu`` file) as a pytree."""
        key = str(name).strip().lower().replace("-", "_")
        if key not in self.hosts:
            raise CatalogError(
                _unknown("host", name, list(self.hosts), "conf/hardware/ (kind: cpu)")
            )
        return HostTier.from_mapping(self.hosts[key].values)

    def dataset(self, name: str) -> DatasetEntry:
        """The benchmark dataset ``name`` (a file stem under ``conf/dataset/``)."""
        key = _norm(str(name))
        if key in self.datasets:
            return self.datasets[key]
        raise CatalogError(_unknown("dataset", name, list(self.datasets), "conf/dataset/"))

    def accelerator(self, name: str) -> HardwareEntry:
        key = str(name).strip().lower().replace("-", "_")
        if key in self.hardware:
            return self.hardware[key]
        raise CatalogError(_unknown("hardware", name, list(self.hardware), "conf/hardware/"))


def _known_fields(path: Path, data: dict, allowed: set[str], schema: str) -> None:
    """One line naming the first field of ``data`` not in ``allowed`` (with a did-you-mean)."""
    for key in data:
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise CatalogError(f"{path}: unknown field {key!r}{hint} (schema: {schema})")


def _dataset(path: Path, data: dict) -> DatasetEntry:
    """One ``conf/dataset/*.yaml`` file, every field checked (one line on a bad one)."""
    _known_fields(path, data, set(DATASET_FIELDS) | _DATASET_METADATA, "conf/dataset/README.md")
    values = {}
    for key, (lo, hi) in DATASET_FIELDS.items():
        if key not in data:
            raise CatalogError(f"{path}: missing field {key!r} (schema: conf/dataset/README.md)")
        try:
            values[key] = number(f"{path}: {key}", data[key], minimum=lo, maximum=hi)
        except ValueError as e:
            raise CatalogError(str(e)) from None
    if not data.get("sources"):
        raise CatalogError(f"{path}: no sources; say where the lengths come from")
    return DatasetEntry(name=path.stem, title=str(data.get("title", path.stem)), raw=data, **values)


_HW_METADATA = {"title", "vendor", "kind", "generation", "status", "host", "sources", "notes"}


def _unknown(what: str, name: str, known: list[str], where: str) -> str:
    close = difflib.get_close_matches(_norm(str(name)), known, n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown {what} {name!r}{hint} (known names are the files in {where})"


@functools.lru_cache(maxsize=4)
def load_catalog(root: str | None = None) -> Catalog:
    """Cached catalog for ``root`` (default: ``conf_dir()``)."""
    return Catalog(Path(root) if root else None)
