"""The hardware catalog (conf/hardware/*.yaml): names resolve, every number is sourced, the
dense-peak conventions hold, and values agree with shared/reference/hardware.csv."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import pytest

from dse.catalog.registry import CatalogError
from dse.model.hardware import GENERATIONS, HARDWARE_FIELDS, HOST_FIELDS

ACCELERATORS = (
    "h100_sxm",
    "h200_sxm",
    "h800",
    "b200",
    "gb200",
    "b300",
    "gb300",
    "mi300x",
    "mi325x",
    "mi355x",
    "vr200",
    "groq_lpu",
    "groq3_lpx",
)
HOSTS = ("grace", "vera", "x86_pcie5", "x86_pcie6")

# Non-numeric keys a file may carry besides its numeric fields.
ACCEL_META = {"title", "vendor", "kind", "generation", "status", "host", "sources"}
HOST_META = {"title", "vendor", "kind", "sources"}

CSV_PATH = Path(__file__).resolve().parents[2].parent / "shared/reference/hardware.csv"

# Catalog name -> device column of hardware.csv (h800 is not in the CSV).
CSV_DEVICE = {
    "h100_sxm": "NVIDIA H100 SXM5",
    "h200_sxm": "NVIDIA H200 SXM5",
    "b200": "NVIDIA B200 (HGX, 1000 W)",
    "gb200": "NVIDIA GB200 (NVL72, per GPU, 1200 W)",
    "b300": "NVIDIA B300 Blackwell Ultra (HGX)",
    "gb300": "NVIDIA GB300 Blackwell Ultra (NVL72, per GPU, 1400 W)",
    "vr200": "NVIDIA Rubin GPU (VR200, Vera Rubin NVL72 per GPU; announced)",
    "groq_lpu": "Groq LPU v1 (GroqChip / TSP, 14 nm)",
    "groq3_lpx": "NVIDIA Groq 3 LPU (LP30, in Groq 3 LPX rack; announced)",
    "mi300x": "AMD Instinct MI300X",
    "mi325x": "AMD Instinct MI325X",
    "mi355x": "AMD Instinct MI355X",
}
# CSV column -> YAML field.
CSV_COLUMN = {
    "bf16_tflops_dense": "bf16_tflops",
    "fp8_tflops_dense": "fp8_tflops",
    "fp4_tflops_dense": "fp4_tflops",
    "mem_gb": "mem_capacity_gb",
    "mem_tbps": "mem_bandwidth_tbs",
    "sram_mb": "sram_mb",
    "scaleup_gbps_per_dir": "scaleup_bandwidth_gbs",
    "scaleout_gbps": "scaleout_bandwidth_gbit",
    "tdp_w": "tdp_w",
    "price_usd": "price_usd",
}
# Deliberate departures from the CSV, each with its reason (the YAML `sources` entry says more).
CSV_EXCEPTIONS = {
    ("vr200", "price_usd"): "catalog uses rack price / 72 (~$108k); CSV has the GPU-only ~$55k",
}


def _numeric_fields(raw: dict, fields: dict) -> list[str]:
    return [k for k in fields if k in raw and raw[k] is not None]


# ----- names resolve ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ACCELERATORS)
def test_accelerator_loads(catalog, name):
    entry = catalog.accelerator(name)
    assert entry.name == name
    assert entry.generation in GENERATIONS
    assert entry.kind in ("gpu", "sram")
    assert entry.title and entry.raw.get("status", "").split()[0] in ("shipping", "announced")
    assert entry.host in catalog.hosts, f"{name}: host {entry.host!r} has no conf/hardware file"
    assert float(entry.hw.bf16_tflops) > 0 and float(entry.hw.mem_bandwidth_tbs) > 0


def test_accelerator_name_is_case_and_dash_insensitive(catalog):
    assert catalog.accelerator("H200-SXM").name == "h200_sxm"


@pytest.mark.parametrize("name", HOSTS)
def test_host_loads(catalog, name):
    host = catalog.hosts[name]
    assert host.raw.get("kind") == "cpu"
    assert host.values["mem_capacity_gb"] > 0 and host.values["gpu_link_bandwidth_gbs"] > 0


@pytest.mark.parametrize("bad", ["h100", "b20"])
def test_unknown_name_suggests(catalog, bad):
    with pytest.raises(CatalogError, match="did you mean"):
        catalog.accelerator(bad)


# ----- every number has a source --------------------------------------------------------------
@pytest.mark.parametrize("name", ACCELERATORS)
def test_accelerator_fields_are_sourced(catalog, name):
    raw = catalog.accelerator(name).raw
    unknown = set(raw) - set(HARDWARE_FIELDS) - ACCEL_META
    assert not unknown, f"{name}: unknown keys {sorted(unknown)} (typo? they would be ignored)"
    sources = raw.get("sources") or {}
    fields = _numeric_fields(raw, HARDWARE_FIELDS)
    assert "bf16_tflops" in fields and "mem_capacity_gb" in fields
    for field in fields:
        assert isinstance(raw[field], (int, float)), f"{name}.{field} is not a number"
        text = sources.get(field)
        assert isinstance(text, str) and text.strip(), f"{name}: no source for {field}"
    stale = set(sources) - set(fields)
    assert not stale, f"{name}: sources for absent fields {sorted(stale)}"


@pytest.mark.parametrize("name", HOSTS)
def test_host_fields_are_sourced(catalog, name):
    raw = catalog.hosts[name].raw
    unknown = set(raw) - set(HOST_FIELDS) - HOST_META
    assert not unknown, f"{name}: unknown keys {sorted(unknown)}"
    sources = raw.get("sources") or {}
    fields = _numeric_fields(raw, HOST_FIELDS)
    assert set(fields) == set(HOST_FIELDS), f"{name}: missing {set(HOST_FIELDS) - set(fields)}"
    for field in fields:
        assert isinstance(raw[field], (int, float)), f"{name}.{field} is not a number"
        text = sources.get(field)
        assert isinstance(text, str) and text.strip(), f"{name}: no source for {field}"
    assert not set(sources) - set(fields)


@pytest.mark.parametrize("name", ACCELERATORS)
def test_estimates_say_so(catalog, name):
    """A price with no vendor list price must be flagged as an estimate, never a silent default."""
    raw = catalog.accelerator(name).raw
    if raw.get("price_usd"):
        assert "ESTIMATE" in raw["sources"]["price_usd"]


# ----- dense-peak conventions -----------------------------------------------------------------
@pytest.mark.parametrize("name", ACCELERATORS)
def test_dense_peak_ratios(catalog, name):
    hw = catalog.accelerator(name).hw
    bf16, fp8, fp4 = float(hw.bf16_tflops), float(hw.fp8_tflops), float(hw.fp4_tflops)
    if bf16 > 0 and fp8 > 0:
        assert fp8 == pytest.approx(2.0 * bf16, rel=0.10), f"{name}: fp8 {fp8} vs 2 x bf16 {bf16}"
    if fp4 > 0:
        assert fp8 > 0 and fp4 >= fp8, f"{name}: fp4 {fp4} < fp8 {fp8}"


@pytest.mark.parametrize("name", ACCELERATORS)
def test_link_conventions(catalog, name):
    hw = catalog.accelerator(name).hw
    peer = float(hw.scaleup_peer_bandwidth_gbs)
    if peer > 0:  # switchless mesh: one peer link is a fraction of the aggregate
        assert peer < float(hw.scaleup_bandwidth_gbs)
        assert peer * (float(hw.scaleup_domain) - 1) == pytest.approx(
            float(hw.scaleup_bandwidth_gbs), rel=0.05
        )
    assert float(hw.scaleup_domain) >= 1


# ----- agreement with the reference sheet -----------------------------------------------------
def _csv_rows() -> dict[str, dict[str, str]]:
    with open(CSV_PATH, newline="") as f:
        return {row["device"]: row for row in csv.DictReader(f)}


@pytest.mark.skipif(
    not CSV_PATH.exists() and not os.environ.get("DSE_REQUIRE_SHARED"),
    reason=f"{CSV_PATH} not present (CI sets DSE_REQUIRE_SHARED=1: there it fails instead)",
)
@pytest.mark.parametrize("name", sorted(CSV_DEVICE))
def test_matches_reference_csv(catalog, name):
    rows = _csv_rows()
    row = rows[CSV_DEVICE[name]]
    raw = catalog.accelerator(name).raw
    checked = 0
    for column, field in CSV_COLUMN.items():
        text = (row.get(column) or "").strip()
        if not text or (name, field) in CSV_EXCEPTIONS:
            continue
        expected = float(text)
        got = float(raw.get(field) or 0.0)
        assert math.isclose(got, expected, rel_tol=0.01), (
            f"{name}.{field} = {got}, hardware.csv {column} = {expected}"
        )
        checked += 1
    assert checked >= 4, f"{name}: too few columns compared ({checked})"


@pytest.mark.parametrize("name", ACCELERATORS)
def test_link_latencies_are_given_and_plausible(catalog, name):
    # One-way hops (conf/hardware sources): scale-up and host links sub-microsecond to ~1 us,
    # a NIC-to-NIC RDMA hop a few us; a chip without a NIC has none.
    hw = catalog.accelerator(name).hw
    assert 0.2 <= float(hw.scaleup_hop_us) <= 2.0
    assert 0.2 <= float(hw.host_link_hop_us) <= 2.0
    if float(hw.scaleout_bandwidth_gbit) > 0:
        assert 1.0 <= float(hw.scaleout_hop_us) <= 10.0
    else:
        assert float(hw.scaleout_hop_us) == 0.0


def test_an_accelerator_without_link_latencies_is_refused(tmp_path):
    from dse.catalog.registry import Catalog
    from dse.files import conf_dir

    (tmp_path / "hardware").mkdir()
    text = (conf_dir() / "hardware" / "h100_sxm.yaml").read_text()
    lines = [line for line in text.splitlines() if not line.startswith("scaleout_hop_us:")]
    (tmp_path / "hardware" / "h100_sxm.yaml").write_text("\n".join(lines))
    with pytest.raises(CatalogError, match="no scaleout_hop_us") as err:
        Catalog(tmp_path)
    assert "\n" not in str(err.value) and "h100_sxm.yaml" in str(err.value)
