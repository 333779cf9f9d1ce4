"""Throughput of the batched model: design evaluations per second (and of its gradient).

Run: ``scripts/dev bench`` or ``.venv/bin/python benchmarks/bench_model.py [--n 1000000]``.
Prints figures; it is not a timed test. Random designs span every catalog model and GPU,
all phases and modes, TP/EP/DP/PP, precisions, batch/concurrency, lengths and speculation.
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

import dse
from dse.calibration import Calibration
from dse.catalog import load_catalog
from dse.model.batched import _evaluate_many, evaluate_many, stack
from dse.model.design import Design
from dse.model.serving import PATHS


def random_designs(n: int, n_models: int, n_hw: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    pick = lambda *xs: rng.choice(np.array(xs, dtype=np.float64), n)  # noqa: E731
    tp, dp = pick(1, 2, 4, 8), pick(1, 1, 2, 8)
    d = dict(
        tp=tp, pp=pick(1, 1, 2), dp=dp, ep=np.minimum(tp * dp, pick(1, 8, 16)),
        weight_bits=pick(4, 8, 16), kv_bits=pick(8, 16), phase=pick(0, 1, 2), mode=pick(0, 1),
        batch=rng.integers(1, 512, n).astype(np.float64), concurrency=rng.integers(0, 1024, n).astype(np.float64),
        isl=rng.integers(128, 131072, n).astype(np.float64), osl=rng.integers(16, 4096, n).astype(np.float64),
        spec_k=pick(0, 0, 1, 3), spec_tokens_per_step=pick(0, 1.5, 2.5), prefill_gpus=pick(0, 8, 16), decode_gpus=pick(8, 16, 32),
    )  # fmt: skip
    # Fields added later (activation width, serving framework) only where the Design has them,
    # so the same script times older checkouts.
    extra = dict(act_bits=pick(0, 8), framework=pick(0, 1, 2, 3))
    d.update({k: v for k, v in extra.items() if k in Design.__dataclass_fields__})
    d["prefix"] = np.floor(d["isl"] * rng.uniform(0, 0.95, n))
    d["spec_tokens_per_step"] = np.minimum(d["spec_tokens_per_step"], d["spec_k"] + 1)
    model_idx = rng.integers(0, n_models, n).astype(np.int32)
    hw_idx = rng.integers(0, n_hw, n).astype(np.int32)
    return model_idx, hw_idx, Design(**{k: jnp.asarray(v) for k, v in d.items()})


def timeit(fn, repeats=3):
    fn()  # compile + warm
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main():
    dse.configure()  # float64 and the compilation cache, as the CLI does
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--grad-n", type=int, default=200_000)
    args = ap.parse_args()
    cat = load_catalog()
    cal = Calibration.load()
    archs = stack([e.arch for e in cat.models.values()])
    gpus = [e for e in cat.hardware.values() if e.kind == "gpu"]
    hws = stack([e.hw for e in gpus])
    mi, hi, des = random_designs(args.n, len(cat.models), len(gpus))

    print(
        f"dse model benchmark: {args.n:,} random designs, {len(cat.models)} models x {len(gpus)} GPUs, "
        f"float64, {os.cpu_count()} CPU cores, jax {jax.__version__}"
    )
    for path, name in enumerate(PATHS):
        t0 = time.perf_counter()
        out = _evaluate_many(archs, hws, cal.efficiency, cal.runtime, mi, hi, des, path=path)
        jax.block_until_ready(out)
        first = time.perf_counter() - t0
        t = timeit(
            lambda: jax.block_until_ready(
                _evaluate_many(archs, hws, cal.efficiency, cal.runtime, mi, hi, des, path=path)
            )
        )
        finite = bool(np.all(np.isfinite(np.stack([np.asarray(x) for x in out.as_tuple()]))))
        print(
            f"  {name:13s} {args.n / t:>12,.0f} evaluations/s  ({t:.2f} s per 1e6-batch; compile+first {first:.1f} s; finite: {finite})"
        )
    # A mixed batch through the public entry point (groups by path, chunks, host copies).
    t = timeit(
        lambda: evaluate_many(archs, hws, cal.efficiency, cal.runtime, mi, hi, des), repeats=1
    )
    print(
        f"  {'mixed (API)':13s} {args.n / t:>12,.0f} evaluations/s  (evaluate_many, all four paths, incl. host transfer)"
    )

    # Gradient of output tokens/s/GPU w.r.t. every hardware field, per design (reverse mode).
    gn = args.grad_n
    mi_g, hi_g, des_g = random_designs(gn, len(cat.models), len(gpus), seed=1)
    hw_rows = jax.tree.map(lambda x: jnp.take(x, jnp.asarray(hi_g), axis=0), hws)

    def one(hw, m, d):
        arch = jax.tree.map(lambda x: x[m], archs)
        from dse.model.serving import evaluate

        return evaluate(arch, hw, cal.efficiency, cal.runtime, d, path=2).tok_s_gpu

    grad_fn = jax.jit(jax.vmap(jax.grad(one), in_axes=(0, 0, 0)))
    t = timeit(lambda: jax.block_until_ready(grad_fn(hw_rows, jnp.asarray(mi_g), des_g)), repeats=2)
    g = grad_fn(hw_rows, jnp.asarray(mi_g), des_g)
    gfinite = all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(g))
    print(
        f"  gradient: {gn:,} designs x {len(jax.tree.leaves(hws))} hardware partials in {t:.3f} s -> "
        f"{gn / t:,.0f} gradient evaluations/s (all finite: {gfinite})"
    )


if __name__ == "__main__":
    main()
