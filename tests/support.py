"""Shared fixtures-in-code for the model, scenario and CLI tests.

Compilation dominates test time (the model is one large XLA program), so every test that runs
the batched model goes through ``run`` below with tables of the same shape (8 models x 5
accelerators, designs padded to 256 by ``evaluate_many``). The shipped example scenarios use
8 models and 5 accelerators as well, so ``dse predict`` on them reuses the same executables.
Nothing here changes behaviour; it only keeps shapes stable.
"""

from __future__ import annotations

import functools

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from dse.calibration import Calibration
from dse.catalog import load_catalog
from dse.model import EFFICIENCY_FIELDS, Efficiency, make_design
from dse.model.batched import evaluate_many, stack
from dse.model.design import Design
from dse.model.hardware import Hardware
from dse.model.metrics import METRIC_FIELDS

# Table of models / accelerators used by the batched tests (sizes fixed on purpose, see above).
MODELS = (
    "llama3.1-8b",
    "llama3.1-70b",
    "llama3.1-405b",
    "deepseek-v3",
    "mixtral-8x7b",
    "qwen3-30b-a3b",
    "gpt-oss-120b",
    "qwen3-235b-a22b",
)
ACCELERATORS = ("h100_sxm", "h200_sxm", "b200", "gb200", "mi300x")

DESIGN_FIELDS = tuple(Design.__dataclass_fields__)


@functools.lru_cache(maxsize=1)
def calibration() -> Calibration:
    return Calibration.load()


@functools.lru_cache(maxsize=1)
def tables():
    cat = load_catalog()
    archs = stack([cat.model(m).arch for m in MODELS])
    hws = stack([cat.accelerator(h).hw for h in ACCELERATORS])
    return archs, hws


def f64(x) -> jnp.ndarray:
    return jnp.asarray(float(x), dtype=jnp.float64)


def calibrated_efficiency(hw_name: str, **fields: float) -> Efficiency:
    """The shipped efficiencies of ``hw_name``'s generation, with ``fields`` set."""
    eff = calibration().efficiency.select(hardware(hw_name).generation)
    for f, v in fields.items():
        eff = eqx.tree_at(lambda e, f=f: getattr(e, f), eff, f64(v))
    return eff


def runtime_with(**fields: float):
    """The default runtime with scalar ``fields`` set."""
    from dse.model import default_runtime

    rt = default_runtime()
    for f, v in fields.items():
        rt = eqx.tree_at(lambda r, f=f: getattr(r, f), rt, f64(v))
    return rt


def arch(name: str):
    return load_catalog().model(name).arch


def hardware(name: str) -> Hardware:
    return load_catalog().accelerator(name).hw


def scaled_hardware(name: str, field_names: tuple[str, ...], factors) -> Hardware:
    """Stack of ``len(factors)`` copies of an accelerator with ``field_names`` multiplied."""
    base = hardware(name)
    rows = []
    for f in factors:
        vals = {
            k: getattr(base, k) * f if k in field_names else getattr(base, k)
            for k in Hardware.__dataclass_fields__
        }
        rows.append(Hardware(**vals))
    return stack(rows)


def designs(rows: list[dict]) -> Design:
    """A stacked Design (numpy arrays) from dicts of field overrides (make_design defaults)."""
    ds = [make_design(**{k: v for k, v in r.items() if k in DESIGN_FIELDS}) for r in rows]
    return Design(**{f: np.array([float(getattr(d, f)) for d in ds]) for f in DESIGN_FIELDS})


def run(rows: list[dict], hws=None, archs=None, calib: Calibration | None = None):
    """Evaluate rows (dicts with ``model``/``hw`` names or ``mi``/``hi`` indices plus design
    fields) through ``dse.model.batched.evaluate_many``; Metrics of numpy arrays."""
    t_archs, t_hws = tables()
    archs = t_archs if archs is None else archs
    hws = t_hws if hws is None else hws
    calib = calib or calibration()
    mi = np.array(
        [r["mi"] if "mi" in r else MODELS.index(r["model"]) for r in rows], dtype=np.int32
    )
    hi = np.array(
        [r["hi"] if "hi" in r else ACCELERATORS.index(r["hw"]) for r in rows], dtype=np.int32
    )
    return evaluate_many(archs, hws, calib.efficiency, calib.runtime, mi, hi, designs(rows))


def metrics_matrix(m) -> np.ndarray:
    """[n, len(METRIC_FIELDS)] array of all metric fields."""
    return np.stack([np.asarray(getattr(m, f), dtype=np.float64) for f in METRIC_FIELDS], axis=1)


def ideal_efficiency(**overrides: float) -> Efficiency:
    """Scalar efficiencies of a perfect machine: every fraction 1, no fixed time per kernel or
    layer, no small-GEMM penalty (``gemm_half_tokens`` = 0), so times are exactly FLOPs / peak or
    bytes / bandwidth. Collectives keep 1 us of latency (0.5 us per dispatch and combine)."""
    fixed = ("kernel_us", "layer_sync_us", "moe_layer_sync_us")
    vals = {}
    for f in EFFICIENCY_FIELDS:
        vals[f] = 0.0 if (f in fixed or "half" in f) else 1.0
    vals["a2a_latency_us"] = 0.5
    vals.update(overrides)
    return Efficiency(**{f: jnp.asarray(float(v)) for f, v in vals.items()})


def ideal_hardware(tflops: float = 1000.0, tbs: float = 1e9, **overrides: float) -> Hardware:
    """One peak for every precision; enormous memory bandwidth (compute-bound) unless given."""
    vals = dict(
        bf16_tflops=tflops,
        fp8_tflops=tflops,
        fp4_tflops=tflops,
        mem_capacity_gb=1e6,
        mem_bandwidth_tbs=tbs,
        scaleup_bandwidth_gbs=1e9,
        scaleup_domain=1e6,
        scaleout_bandwidth_gbit=1e9,
    )
    vals.update(overrides)
    return Hardware.from_mapping(vals, "hopper")


class IdealCalibration:
    """A perfect machine for every generation (``ideal_efficiency``), shaped like a real
    calibration (arrays of shape [G]) so ``evaluate_many`` reuses its compiled code."""

    def __init__(self):
        from dse.catalog import GENERATIONS

        one = ideal_efficiency()
        self.efficiency = Efficiency(
            **{
                f: jnp.full((len(GENERATIONS),), float(getattr(one, f)), dtype=jnp.float64)
                for f in EFFICIENCY_FIELDS
            }
        )
        # Every framework as "static": no host work, every kernel fused (a perfect engine).
        rt = calibration().runtime
        self.runtime = eqx.tree_at(
            lambda r: (r.fw_step_ms, r.fw_seq_us, r.fw_overlap, r.fw_request_ms,
                       r.fw_kernel_factor),
            rt,
            tuple(jnp.full_like(x, v) for x, v in (
                (rt.fw_step_ms, 0.0), (rt.fw_seq_us, 0.0), (rt.fw_overlap, 0.0),
                (rt.fw_request_ms, 0.0), (rt.fw_kernel_factor, 1.0))),
        )  # fmt: skip


@functools.lru_cache(maxsize=1)
def ideal_calibration() -> IdealCalibration:
    return IdealCalibration()


def random_rows(n: int, seed: int = 0) -> list[dict]:
    """``n`` random design rows over the tables: valid and invalid layouts, every phase/mode,
    saturating (0) batches and concurrencies, speculation, prefixes, disagg pools (some 0)."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        isl = float(rng.choice([1.0, 128.0, 1000.0, 8192.0, 32000.0, 131072.0]))
        k = float(rng.choice([0, 0, 1, 3, 5]))
        rows.append(
            dict(
                mi=int(rng.integers(len(MODELS))),
                hi=int(rng.integers(len(ACCELERATORS))),
                tp=float(rng.choice([1, 2, 4, 8, 16])),
                pp=float(rng.choice([1, 1, 1, 2, 4])),
                dp=float(rng.choice([1, 1, 2, 8, 32])),
                ep=float(rng.choice([1, 1, 4, 8, 64])),
                weight_bits=float(rng.choice([4.0, 8.0, 16.0])),
                kv_bits=float(rng.choice([8.0, 16.0])),
                phase=float(rng.integers(3)),
                mode=float(rng.integers(2)),
                batch=float(rng.choice([0.0, 1.0, 3.0, 64.0, 1000.0, 1e5])),
                concurrency=float(rng.choice([0.0, 1.0, 16.0, 500.0, 1e5])),
                isl=isl,
                osl=float(rng.choice([1.0, 100.0, 1024.0, 16384.0])),
                prefix=float(np.floor(isl * rng.choice([0.0, 0.0, 0.5, 0.99]))),
                spec_k=k,
                spec_tokens_per_step=float(rng.choice([0.0, 1.0, min(2.5, k + 1.0)])) if k else 0.0,
                prefill_gpus=float(rng.choice([0.0, 1.0, 8.0, 64.0])),
                decode_gpus=float(rng.choice([0.0, 8.0, 64.0, 512.0])),
            )
        )
    return rows


# A few hundred points of a shipped study (kv_tier_sizing), shrunk with ++ overrides: the study,
# report and CLI tests run it end to end in a few seconds (tier sizes vary, so every report
# figure is drawn).
SMALL_STUDY = [
    "study=kv_tier_sizing",
    "++space.choices.batch=[16,64]",
    "++space.choices.prefill_units=[16]",
    "++space.choices.storage_tb=[0,200]",
    "++space.choices.storage_gbs=[400]",
    "++space.choices.host_gb_per_gpu=[0,128]",
    "sessions=16",
]
