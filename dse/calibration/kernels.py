"""Kernel-level calibration: fit the kernel efficiencies on public microbenchmarks alone.

The tables in ``conf/calibration/kernels/`` are public kernel measurements copied with their
sources (GEMM TFLOPS by shape and precision, attention TFLOPS, achieved HBM bandwidth, NCCL
bus bandwidth and small-message latency, MoE dispatch/combine times, CUDA-graph step times).
Each row is predicted with the *model's own* primitives, so the fitted values mean exactly
what the model uses them for:

* GEMM rows: :func:`dse.model.roofline.op_cost` with the FLOPs and bytes that
  :func:`dse.model.layer._gemm` counts, at ``gemm_efficiency(m, mfu, half_tokens)``, plus one
  kernel's fixed time ``kernel_us``; grouped GEMMs at ``moe_eff`` as in ``moe_experts``.
* attention rows: compute at ``attn_mfu`` of the 16-bit (FP8) peak as in ``attention_core``;
  memory-bound decode attention and memory kernels at ``mbu``.
* all-reduce rows: :func:`dse.model.collectives.all_reduce_time` (bus bandwidth of large
  messages, latency of small ones).
* all-to-all rows: :func:`dse.model.collectives.moe_all_to_all_time` over the dispatch plus
  combine bytes (two kernels, two latencies), or the achieved link bandwidth of large batches.
* step rows: a CUDA-graph decode step of known bytes and kernel count:
  ``bytes / (bw * mbu) + kernels * kernel_us``.

The fit is MAP (weighted Huber on log(pred/measured), per-generation values shrunk towards a
shared value, shared values towards ``PRIOR``), the same estimator as the serving fit. Every
fitted value is printed beside its evidence range (``efficiency.EVIDENCE``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import scipy.optimize

from ..catalog import GENERATIONS, Catalog, conf_dir
from ..model.batched import stack
from ..model.collectives import all_reduce_time, moe_all_to_all_time
from ..model.design import bytes_per_element
from ..model.efficiency import (
    EFFICIENCY_FIELDS,
    EVIDENCE,
    GENERATION_PRIOR,
    KERNEL_FIELDS,
    Efficiency,
    default_runtime,
    generation_prior,
)
from ..model.layer import ACT_BYTES
from ..model.roofline import gemm_efficiency, op_cost
from .fit import to_constrained, to_unconstrained

DTYPE_BITS = {"bf16": 16.0, "fp16": 16.0, "fp8": 8.0, "fp4": 4.0}
SHARED_SIGMA = 0.5  # prior width of the shared value around PRIOR (logit / log units)
DEVIATION_SIGMA = 0.5  # prior width of one generation's deviation from the shared value
HUBER_DELTA = 0.2
OBS_SIGMA = 0.1  # scatter of one microbenchmark around a mean-value kernel model (~10 %)
LARGE_MESSAGE = 4e9  # bytes: nccl-tests' "peak" bus bandwidth is read at GB-sized messages


def kernels_dir() -> Path:
    return conf_dir() / "calibration" / "kernels"


@dataclass
class KernelRows:
    """Every usable microbenchmark row as flat arrays (one entry per observation)."""

    frame: pd.DataFrame  # family, hardware, quantity, measured, source, what
    family: np.ndarray
    hw_idx: np.ndarray
    generation: np.ndarray  # index into GENERATIONS
    hws: object  # stacked Hardware of the hardware names used
    measured: np.ndarray
    # Per-observation inputs (0 where unused by the family).
    bits: np.ndarray
    m: np.ndarray
    n: np.ndarray
    k: np.ndarray
    groups: np.ndarray
    grouped: np.ndarray
    nbytes: np.ndarray
    gpus: np.ndarray
    kernels: np.ndarray
    kind: np.ndarray  # code of the predicted quantity (see KINDS)


# What a row measures, and how it is predicted.
KINDS = (
    "gemm_tflops",  # achieved TFLOPS of one GEMM (dense or grouped)
    "attn_tflops",  # achieved TFLOPS of a compute-bound attention kernel
    "mem_fraction",  # achieved fraction of HBM bandwidth of a large memory-bound kernel
    "ar_busbw",  # all-reduce bus bandwidth (GB/s) of a large message
    "ar_latency",  # all-reduce time (us) of a small message
    "link_fraction",  # achieved fraction of per-direction scale-up bandwidth (p2p, all-to-all)
    "a2a_us",  # MoE dispatch + combine time (us)
    "step_us",  # CUDA-graph decode step of known bytes and kernels (us)
)


def _num(v) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return float("nan")
    return x


def load_kernel_rows(catalog: Catalog, root: Path | None = None) -> KernelRows:
    """Read ``conf/calibration/kernels/*.csv`` into observations (rows the model cannot
    express are left out, and the reason is in ``frame.what``)."""
    root = root or kernels_dir()
    obs: list[dict] = []

    def add(fam, row, kind, measured, what, **kw):
        hw = str(row["hardware"]).strip()
        if hw not in catalog.hardware or not np.isfinite(measured) or measured <= 0:
            return
        obs.append(dict(family=fam, hardware=hw, kind=kind, measured=float(measured), what=what,
                        source=str(row.get("source", "")), **kw))  # fmt: skip

    def read(name):
        """One family's rows, without those marked ``fit=0`` (each says why in ``fit_note``:
        a phenomenon the model does not represent, or a bound rather than a measurement)."""
        p = root / f"{name}.csv"
        df = pd.read_csv(p) if p.exists() else pd.DataFrame()
        if "fit" in df.columns:
            df = df[df["fit"].fillna(1).astype(float) > 0]
        return df

    for _, r in read("gemm").iterrows():
        bits = DTYPE_BITS.get(str(r["dtype"]).strip().lower())
        kind = str(r.get("kind", "dense")).strip().lower()
        if bits is None:
            continue
        m, n, k = _num(r["m"]), _num(r["n"]), _num(r["k"])
        groups = _num(r.get("groups", 1.0))
        groups = 1.0 if not np.isfinite(groups) else groups
        if not all(np.isfinite([m, n, k])):
            continue
        add("gemm", r, "gemm_tflops", _num(r["tflops"]), f"{kind} {r['dtype']} {m:g}x{n:g}x{k:g}",
            bits=bits, m=m, n=n, k=k, groups=groups, grouped=float(kind != "dense"))  # fmt: skip
    for _, r in read("attention").iterrows():
        bits = 8.0 if str(r["dtype"]).strip().lower() == "fp8" else 16.0
        tflops, gbs = _num(r.get("tflops")), _num(r.get("gbs"))
        hw = catalog.hardware.get(str(r["hardware"]).strip())
        seqlen = _num(r.get("seqlen"))  # rows below 2k tokens (FA ramp-up) are fit=0
        if np.isfinite(gbs) and hw is not None:
            add("attention", r, "mem_fraction", gbs * 1e9 / float(hw.hw.mem_bandwidth),
                f"{r['kernel']} memory-bound", bits=bits)  # fmt: skip
        elif np.isfinite(tflops):
            add("attention", r, "attn_tflops", tflops, f"{r['kernel']} s={seqlen:g}", bits=bits)
    for _, r in read("memory").iterrows():
        hw = catalog.hardware.get(str(r["hardware"]).strip())
        frac = _num(r.get("achieved_fraction"))
        if not np.isfinite(frac) and hw is not None:
            frac = _num(r.get("achieved_gbs")) * 1e9 / float(hw.hw.mem_bandwidth)
        frac = frac / 100.0 if frac > 1.5 else frac  # percentages
        add("memory", r, "mem_fraction", frac, str(r["kernel"]))
    for _, r in read("allreduce").iterrows():
        gpus = _num(r["gpus"])
        busbw, lat = _num(r.get("busbw_gbs")), _num(r.get("latency_us"))
        if np.isfinite(busbw):
            size = _num(r.get("size"))
            size = LARGE_MESSAGE if not np.isfinite(size) or size < 64e6 else size
            add("allreduce", r, "ar_busbw", busbw, f"busbw {gpus:g} GPUs", gpus=gpus, nbytes=size)
        if np.isfinite(lat):
            size = _num(r.get("size"))
            # The SGLang table gives "data size" without a unit: read as BF16 elements.
            add("allreduce", r, "ar_latency", lat, f"latency {gpus:g} GPUs size {size:g}",
                gpus=gpus, nbytes=size * ACT_BYTES)  # fmt: skip
    for _, r in read("p2p").iterrows():
        link = str(r.get("link", "")).lower()
        if "nvlink" not in link or str(r.get("direction", "")).lower().startswith("bi"):
            continue
        hw = catalog.hardware.get(str(r["hardware"]).strip())
        if hw is not None:
            add("p2p", r, "link_fraction",
                _num(r["achieved_gbs"]) * 1e9 / float(hw.hw.scaleup_bandwidth), "p2p NVLink")
    for _, r in read("alltoall").iterrows():
        ep, tokens, hidden, topk = (_num(r[c]) for c in ("ep", "tokens_per_rank", "hidden", "topk"))
        d_us, c_us = _num(r.get("dispatch_us")), _num(r.get("combine_us"))
        hw = catalog.hardware.get(str(r["hardware"]).strip())
        if hw is None or not np.isfinite(ep):
            continue
        inside = min(ep, float(hw.hw.scaleup_domain))
        if np.isfinite(d_us) and np.isfinite(c_us) and ep <= inside:
            d_b = DTYPE_BITS.get(str(r.get("dispatch_dtype", "bf16")).lower(), 16.0) / 8.0
            c_b = DTYPE_BITS.get(str(r.get("combine_dtype", "bf16")).lower(), 16.0) / 8.0
            copies = topk * (ep - 1.0) / ep  # copies to other ranks (as step._moe_all_to_all)
            nbytes = tokens * copies * hidden * (d_b + c_b)
            add("alltoall", r, "a2a_us", d_us + c_us, f"EP{ep:g} {tokens:g} tok/rank",
                gpus=ep, nbytes=nbytes)  # fmt: skip
        elif not np.isfinite(d_us):
            gbs = np.nanmax([_num(r.get("dispatch_gbs")), _num(r.get("combine_gbs"))])
            if np.isfinite(gbs) and tokens >= 2048:
                add("alltoall", r, "link_fraction", gbs * 1e9 / float(hw.hw.scaleup_bandwidth),
                    f"EP{ep:g} {tokens:g} tok/rank bandwidth")  # fmt: skip
    for _, r in read("launch").iterrows():
        kernels, step = _num(r.get("kernels_per_step")), _num(r.get("step_us"))
        wl = str(r.get("workload", ""))
        if np.isfinite(step) and np.isfinite(kernels) and "Llama-3.2-1B" in wl:
            nbytes = 1.24e9 * 2.0  # Llama-3.2-1B BF16 weights (1.24 B params; the post: 2.48 GB)
            add("launch", r, "step_us", step, f"{wl} {kernels:g} kernels",
                kernels=kernels, nbytes=nbytes)  # fmt: skip
    if not obs:
        raise ValueError(f"no usable kernel microbenchmark rows in {root}")
    frame = pd.DataFrame(obs)
    names = sorted(frame.hardware.unique())
    col = lambda c: frame[c].fillna(0.0).to_numpy(float) if c in frame else np.zeros(len(frame))  # noqa: E731
    return KernelRows(
        frame=frame,
        family=frame.family.to_numpy(),
        hw_idx=np.array([names.index(h) for h in frame.hardware]),
        generation=np.array(
            [GENERATIONS.index(catalog.hardware[h].generation) for h in frame.hardware]
        ),
        hws=stack([catalog.hardware[h].hw for h in names]),
        measured=frame.measured.to_numpy(float),
        bits=np.where(col("bits") > 0, col("bits"), 16.0),
        m=col("m"), n=col("n"), k=col("k"),
        groups=np.where(col("groups") > 0, col("groups"), 1.0),
        grouped=col("grouped"), nbytes=col("nbytes"), gpus=col("gpus"), kernels=col("kernels"),
        kind=np.array([KINDS.index(x) for x in frame.kind]),
    )  # fmt: skip


def predict_one(eff: Efficiency, hw, kind, bits, m, n, k, groups, grouped, nbytes, gpus, kernels):
    """Predicted value of one observation (scalars; ``eff`` already selected). Pure JAX."""
    rt = default_runtime()
    kernel_s = eff.kernel_us * 1e-6
    # GEMM (dense or grouped): the bytes and FLOPs of layer._gemm, the efficiency of moe_experts.
    moe = jnp.where(grouped > 0, eff.moe_eff, 1.0)
    flops = 2.0 * m * n * k * groups
    g_bytes = groups * (n * k * bytes_per_element(bits) + m * (k + n) * ACT_BYTES)
    rate_c = hw.peak_flops(bits) * gemm_efficiency(m, eff.gemm_mfu(bits), eff.gemm_half_tokens)
    t_gemm = op_cost(flops, g_bytes, rate_c * moe, hw.mem_bandwidth * eff.mbu * moe).total
    gemm_tflops = flops / (t_gemm + kernel_s) / 1e12
    attn_tflops = hw.peak_flops(bits) * eff.attn_mfu / 1e12
    # All-reduce: bus bandwidth = 2 (n-1)/n * bytes / time (nccl-tests' definition).
    t_ar = all_reduce_time(nbytes, gpus, hw, eff, rt)
    busbw = 2.0 * (gpus - 1.0) / jnp.maximum(gpus, 1.0) * nbytes / jnp.maximum(t_ar, 1e-12) / 1e9
    t_a2a = moe_all_to_all_time(nbytes, 0.0, gpus, hw, eff, rt)
    step = nbytes / (hw.mem_bandwidth * eff.mbu) + kernels * kernel_s
    values = jnp.stack([
        gemm_tflops, attn_tflops, eff.mbu, busbw, t_ar * 1e6, eff.link_eff, t_a2a * 1e6, step * 1e6,
    ])  # fmt: skip
    return values[kind]


def predict(eff_all: Efficiency, rows: KernelRows):
    """Predictions for every observation; ``eff_all`` holds all generations ([G] arrays)."""
    hws = jax.tree.map(lambda x: jnp.asarray(x)[rows.hw_idx], rows.hws)
    effs = jax.tree.map(lambda x: x[jnp.asarray(rows.generation)], eff_all)
    args = [jnp.asarray(getattr(rows, f)) for f in
            ("kind", "bits", "m", "n", "k", "groups", "grouped", "nbytes", "gpus", "kernels")]  # fmt: skip
    return jax.vmap(predict_one)(effs, hws, *args)


# ---- the fit ----------------------------------------------------------------------------------


def _efficiency(theta, base: Efficiency) -> Efficiency:
    nf, ng = len(KERNEL_FIELDS), len(GENERATIONS)
    shared, dev = theta[:nf], theta[nf:].reshape(nf, ng)
    vals = {f: getattr(base, f) for f in EFFICIENCY_FIELDS}
    for i, f in enumerate(KERNEL_FIELDS):
        vals[f] = to_constrained(f, shared[i] + dev[i])
    return Efficiency(**vals)


def _base_efficiency() -> Efficiency:
    priors = [generation_prior(g) for g in GENERATIONS]
    return Efficiency(
        **{f: jnp.asarray([p[f] for p in priors], dtype=jnp.float64) for f in EFFICIENCY_FIELDS}
    )


def fit_kernels(rows: KernelRows, maxiter: int = 400) -> tuple[Efficiency, float, set[str]]:
    """MAP fit of the kernel-level fields; returns (efficiency of all generations, loss, the
    generations that had rows). Generations without rows get the shared value, except those
    with their own physics (``GENERATION_PRIOR``: SRAM-first chips), which keep it."""
    base = _base_efficiency()
    nf, ng = len(KERNEL_FIELDS), len(GENERATIONS)
    start = generation_prior("hopper")
    prior = np.array([float(to_unconstrained(f, start[f])) for f in KERNEL_FIELDS])
    target = jnp.asarray(np.log(rows.measured))
    # Each family weighs as much as the others in total (60 GEMM rows must not drown 2 steps).
    fam = pd.Series(rows.family)
    weight = jnp.asarray(1.0 / fam.map(fam.value_counts()).to_numpy(float) ** 0.5)

    def loss(theta):
        pred = predict(_efficiency(theta, base), rows)
        r = jnp.log(jnp.maximum(pred, 1e-12)) - target
        a = jnp.abs(r)
        hub = jnp.where(a <= HUBER_DELTA, 0.5 * r**2, HUBER_DELTA * (a - 0.5 * HUBER_DELTA))
        fit = jnp.sum(weight * hub) / OBS_SIGMA**2
        reg = jnp.sum(((theta[:nf] - prior) / SHARED_SIGMA) ** 2)
        reg = reg + jnp.sum((theta[nf:] / DEVIATION_SIGMA) ** 2)
        return (fit + 0.5 * reg) / len(rows.measured)

    vg = jax.jit(jax.value_and_grad(loss))
    theta0 = np.concatenate([prior, np.zeros(nf * ng)])
    res = scipy.optimize.minimize(
        lambda x: tuple(np.asarray(v, dtype=np.float64) for v in vg(jnp.asarray(x))),
        theta0, jac=True, method="L-BFGS-B", options={"maxiter": maxiter},
    )  # fmt: skip
    eff = _efficiency(jnp.asarray(res.x), base)
    fitted = {GENERATIONS[g] for g in np.unique(rows.generation)}
    for i, g in enumerate(GENERATIONS):
        if g not in fitted and g in GENERATION_PRIOR:
            eff = Efficiency(**{
                f: getattr(eff, f).at[i].set(GENERATION_PRIOR[g].get(f, getattr(eff, f)[i]))
                for f in EFFICIENCY_FIELDS
            })  # fmt: skip
    return eff, float(res.fun), fitted


# Which kernel-level fields a kind of observation pins down (for the generation it ran on).
INFORMS = {
    "gemm_tflops": ("gemm_half_tokens", "kernel_us", "mbu"),  # + the dtype's gemm_mfu, moe_eff
    "attn_tflops": ("attn_mfu",),
    "mem_fraction": ("mbu",),
    "ar_busbw": ("link_eff",),
    "ar_latency": ("collective_latency_us",),
    "link_fraction": ("link_eff",),
    "a2a_us": ("a2a_latency_us", "link_eff"),
    "step_us": ("kernel_us", "mbu"),
}
SMALL_M = 256.0  # GEMMs up to this many rows inform gemm_half_tokens, kernel_us and mbu
MFU_FIELD = {16.0: "gemm_mfu_bf16", 8.0: "gemm_mfu_fp8", 4.0: "gemm_mfu_fp4"}


def evidenced(rows: KernelRows) -> dict[str, set[str]]:
    """Per generation, the kernel-level fields that its own microbenchmarks pin down. The
    others borrow the cross-generation value, and the serving level may refine them where it
    has measurements (``fit.py``): each parameter is fitted at the lowest level with evidence."""
    out: dict[str, set[str]] = {g: set() for g in GENERATIONS}
    for kind, gen, bits, grouped, m in zip(
        rows.kind, rows.generation, rows.bits, rows.grouped, rows.m
    ):
        fields = set(INFORMS[KINDS[kind]])
        if KINDS[kind] == "gemm_tflops":
            if m > SMALL_M:  # a large GEMM says nothing about fixed time or the small-M ramp
                fields = set()
            fields.add(MFU_FIELD[float(bits)])
            if grouped > 0:
                fields.add("moe_eff")
        out[GENERATIONS[gen]] |= fields
    return out


def residuals(eff: Efficiency, rows: KernelRows) -> pd.DataFrame:
    """Every observation with its prediction and signed % error."""
    pred = np.asarray(predict(eff, rows))
    out = rows.frame[["family", "hardware", "kind", "what", "measured", "source"]].copy()
    out["predicted"] = pred
    out["error_pct"] = 100.0 * (pred / rows.measured - 1.0)
    return out


def evidence_table(eff: Efficiency, fitted: set[str]) -> pd.DataFrame:
    """Fitted kernel-level values beside their public evidence range (one row per field and
    fitted generation); ``inside`` is False where the model is missing a phenomenon."""
    recs = []
    for f in KERNEL_FIELDS:
        lo, hi, src = EVIDENCE[f]
        for i, g in enumerate(GENERATIONS):
            if g not in fitted:
                continue
            v = float(getattr(eff, f)[i])
            recs.append(dict(field=f, generation=g, value=v, low=lo, high=hi,
                             inside=lo <= v <= hi, evidence=src))  # fmt: skip
    return pd.DataFrame(recs)


__all__ = ["KernelRows", "evidence_table", "evidenced", "fit_kernels", "load_kernel_rows", "predict",
           "residuals"]  # fmt: skip
