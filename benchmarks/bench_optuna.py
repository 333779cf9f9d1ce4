"""Optuna vs exhaustive search on a >= 1e7-point design space: hypervolume reached vs evaluations.

Target: Optuna reaches >= 98 % of the exhaustive front's hypervolume with <= 2 % of the
evaluations. The space (``SPACES["full"]``, 10.8 M points) is Kimi-K2 serving the agentic coding
workload on GB200 / GB300 / VR200 NVL72 racks, P/D disaggregated: software (FP8 or NVFP4 + MTP),
decode tp x ep x dp, decode and prefill pool sizes, prefill tp, batch (13 values), MTP depth, KV
precision, host memory per GPU and a hypothetical-HBM-bandwidth knob grid (``hbm_bw_scale``,
discrete here so both engines search the same finite set and Optuna cannot beat the grid).
Objectives: max tok/s/user and max tok/s/accelerator, subject to TTFT <= 1000 ms and the model's
own feasibility (memory fit, pool sizing). Hypervolume: of the global front (all systems
together), against the reference point (0, 0).

1. Exhaustive: :func:`dse.search.exhaustive.exhaustive_search` over every point (``--chunk``
   designs per call), timed; its front is cached under ``--cache`` (default
   ``/tmp/dse-bench-optuna``), keyed by the space, the question and a hash of ``dse/**.py`` and
   ``conf/**.yaml``, so reruns skip it.
2. Optuna: the same :class:`~dse.search.evaluate.Evaluator` (one compilation) drives the ask /
   evaluate / tell loop of :func:`dse.search.optuna_search.optuna_search`, re-implemented here
   with its helpers (``_params``, ``_suggest``, ``_columns``; in-memory storage, seeded) so the
   hypervolume of the feasible front is recorded after every batch. Runs (``SAMPLERS``):

   * ``nsga2``: Optuna's NSGA-II as ``optuna_search`` configures it (population = batch), with
     the per-ask bookkeeping done once per batch (``dse.search.samplers.BatchNSGAII``, what
     ``make_sampler("nsga2")`` returns; checked to ask the same parameters as the stock sampler).
     One run per ``--seeds``.
   * ``nsga2-stock``: Optuna's ``NSGAIISampler`` as is; the same trials, but each ask costs
     O(trials so far), so it gets ``--stock-trials`` (not in the default list).
   * ``random``, ``tpe``: baselines (TPE's cost also grows with the trials: ``--tpe-trials``).

    .venv/bin/python benchmarks/bench_optuna.py               # full space, ~5.5 min cold
    .venv/bin/python benchmarks/bench_optuna.py --size small  # 105K points, ~45 s
    .venv/bin/python benchmarks/bench_optuna.py --samplers nsga2-stock --seeds 0

"Evaluations" counts every trial told (NSGA-II asks some designs twice; distinct designs are
shown as well). A run ends once HV / HV* reaches ``--stop-at`` or the budget is spent.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import optuna

import dse
from dse.search.evaluate import Evaluator
from dse.search.exhaustive import exhaustive_search
from dse.search.objectives import meets, parse_constraints, parse_objectives, violations
from dse.search.optuna_search import _columns, _params, _suggest, make_sampler
from dse.search.pareto import Front, hypervolume, pareto_mask
from dse.search.samplers import BatchNSGAII
from dse.search.space import Space
from dse.stack import Stack

ROOT = Path(__file__).resolve().parents[1]
MODEL, WORKLOAD, SESSIONS = "kimi-k2", "agentic_coding", 64
OBJECTIVES = ["max:tok_s_user", "max:tok_s_per_unit"]
CONSTRAINTS = {"ttft_ms": {"max": 1000}}
REFERENCE = (0.0, 0.0)  # lower bounds of both maximized objectives
TARGET = 0.98

_SYSTEMS = ["gb200_nvl72", "gb300_nvl72", "vr200_nvl72"]
SPACES = {
    # 3 x 2 x 4 x 4 x 4 x 5 x 13 x 4 x 2 x 3 x 2 x 3 x 3 = 10,782,720 points
    "full": {
        "choices": {
            "software": ["default", "nvfp4_mtp"],
            "tp": [1, 2, 4, 8],
            "ep": [8, 16, 32, 64],
            "dp": [1, 2, 4, 8],
            "decode_units": [16, 32, 48, 56, 64],
            "batch": [1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256],
            "prefill_units": [8, 16, 24, 32],
            "prefill_tp": [4, 8],
            "spec_k": [1, 2, 3],
            "kv_bits": ["fp8", "fp4"],
            "host_gb_per_gpu": [0, 100, 200],
            "hbm_bw_scale": [0.8, 1.0, 1.25],
        },
        "systems": _SYSTEMS,
    },
    # 3 x 2 x 3 x 3 x 3 x 3 x 9 x 3 x 2 x 2 x 2 = 104,976 points
    "small": {
        "choices": {
            "software": ["default", "nvfp4_mtp"],
            "tp": [1, 4, 8],
            "ep": [8, 16, 32],
            "dp": [1, 4, 8],
            "decode_units": [32, 48, 64],
            "batch": [1, 2, 4, 8, 16, 32, 64, 128, 256],
            "prefill_units": [8, 16, 32],
            "spec_k": [1, 3],
            "kv_bits": ["fp8", "fp4"],
            "host_gb_per_gpu": [0, 128],
        },
        "systems": _SYSTEMS,
    },
}


# -- samplers ----------------------------------------------------------------------------------
def _nsga2(population: int | None = None, **kw):
    def make(seed: int, batch: int):
        return BatchNSGAII(population_size=population or batch, seed=seed, **kw)

    return make


SAMPLERS = {
    # name: (factory(seed, population), note)
    "nsga2": (_nsga2(), "optuna_search's NSGA-II (population = batch), O(1) bookkeeping"),
    "nsga2-stock": (
        lambda seed, pop: optuna.samplers.NSGAIISampler(population_size=pop, seed=seed),
        "Optuna's NSGAIISampler as is",
    ),
    "random": (lambda seed, pop: make_sampler("random", seed, pop), "uniform random"),
    "tpe": (lambda seed, pop: make_sampler("tpe", seed, pop), "optuna_search's TPE"),
}


# -- exhaustive --------------------------------------------------------------------------------
def _source_hash() -> str:
    h = hashlib.sha256()
    for folder, pattern in (("dse", "*.py"), ("conf", "*.yaml")):
        for path in sorted((ROOT / folder).rglob(pattern)):
            h.update(str(path.relative_to(ROOT)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _cache_key(mapping: dict, chunk: int) -> str:
    question = dict(
        space=mapping,
        model=MODEL,
        workload=WORKLOAD,
        sessions=SESSIONS,
        objectives=OBJECTIVES,
        constraints=CONSTRAINTS,
        source=_source_hash(),
        chunk=chunk,  # the cached wall time is for this chunk
    )
    return hashlib.sha256(json.dumps(question, sort_keys=True).encode()).hexdigest()[:20]


def exhaustive(ev: Evaluator, objectives, constraints, cache: Path | None, key: str) -> dict:
    path = cache / f"exhaustive-{key}.npz" if cache else None
    if path is not None and path.exists():
        with np.load(path) as z:
            out = {k: z[k] for k in z.files}
        out["cached"] = True
        return out
    t0 = time.perf_counter()
    res = exhaustive_search(
        ev.stack, ev.model, ev.space, objectives, constraints, evaluator=ev, keep_points=False
    )
    wall = time.perf_counter() - t0
    out = dict(
        values=res.front.values,
        ids=res.front.ids,
        evaluated=res.evaluated,
        feasible=res.feasible,
        wall=wall,
    )
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **out)
    out["cached"] = False
    return out


# -- Optuna ------------------------------------------------------------------------------------
def _point_ids(ev: Evaluator, picks) -> np.ndarray:
    """Global space ids of Optuna picks (all discrete) — to count distinct designs."""
    space, offsets = ev.space, ev.space.offsets
    out = np.empty(len(picks), np.int64)
    for j, (k, idx, _) in enumerate(picks):
        p, local = space.products[k], 0
        for f, c in zip(p.fields, p.choices):
            local = local * len(c) + idx.get(f, 0)
        out[j] = offsets[k] + local
    return out


def optuna_run(
    ev,
    objectives,
    constraints,
    sampler,
    budget: int,
    batch: int,
    hv_star: float,
    stop_at: float | None = None,
) -> tuple[list[dict], optuna.Study]:
    """Ask / evaluate / tell in batches (as ``optuna_search``), hypervolume after each batch."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    maximize = tuple(o.maximize for o in objectives)
    study = optuna.create_study(
        sampler=sampler, directions=["maximize" if m else "minimize" for m in maximize]
    )
    params = _params(ev)
    names = ["feasible"] + [c.metric for c in constraints]
    front, seen = Front.empty(maximize), set()
    rows, done, t0, t_model = [], 0, time.perf_counter(), 0.0
    while done < budget:
        trials = [study.ask() for _ in range(min(batch, budget - done))]
        picks = [_suggest(t, ev, params) for t in trials]
        t1 = time.perf_counter()
        metrics = ev.evaluate(_columns(ev, picks))
        t_model += time.perf_counter() - t1
        viol = violations(metrics, constraints)
        values = np.stack([metrics[o.metric] for o in objectives], axis=1)
        for j, trial in enumerate(trials):
            for name, v in zip(names, viol[j]):
                trial.set_constraint(name, float(v))
            study.tell(trial, [float(x) for x in values[j]])
        ids = _point_ids(ev, picks)
        seen.update(ids.tolist())
        ok = meets(metrics, constraints)
        front = front.merge(values[ok], ids[ok])
        done += len(trials)
        hv = hypervolume(front.values, REFERENCE, maximize)
        rows.append(
            dict(
                evaluations=done,
                distinct=len(seen),
                hv=hv / hv_star,
                wall=time.perf_counter() - t0,
                model=t_model,
            )
        )
        if stop_at is not None and hv / hv_star >= stop_at:
            break
    return rows, study


def check_fast_nsga2(ev, objectives, constraints, seed: int, batch=256, generations=5) -> bool:
    """BatchNSGAII and Optuna's NSGAIISampler ask the same parameters (short run)."""
    params = []
    for sampler in (
        BatchNSGAII(population_size=batch, seed=seed),
        optuna.samplers.NSGAIISampler(population_size=batch, seed=seed),
    ):
        _, study = optuna_run(ev, objectives, constraints, sampler, batch * generations, batch, 1.0)
        params.append([t.params for t in study.trials])
    return params[0] == params[1]


# -- report ------------------------------------------------------------------------------------
def _first(rows, level: float):
    return next((r for r in rows if r["hv"] >= level - 1e-12), None)


def report(label: str, rows: list[dict], size: int, marks) -> dict:
    """Print the HV-vs-evaluations table of one run; return its summary."""
    shown = [next((r for r in rows if r["evaluations"] >= m), rows[-1]) for m in marks]
    if len(rows) <= 8:  # a short run: every batch
        shown = list(rows)
    hit = _first(rows, TARGET)
    shown = sorted(
        {id(r): r for r in shown + ([hit] if hit else []) + [rows[-1]]}.values(),
        key=lambda r: r["evaluations"],
    )
    print(f"\n{label}")
    print("| evaluations | % of space | distinct designs | HV / HV* | wall s (model s) |")
    print("|---:|---:|---:|---:|---:|")
    for r in shown:
        print(
            f"| {r['evaluations']:,} | {100 * r['evaluations'] / size:.3f} | "
            f"{r['distinct']:,} | {100 * r['hv']:.2f} % | {r['wall']:.1f} ({r['model']:.1f}) |"
        )
    last = rows[-1]
    summary = dict(
        label=label,
        final_hv=last["hv"],
        evaluations=last["evaluations"],
        wall=last["wall"],
        hit=hit,
    )
    if hit:
        print(
            f"-> {100 * TARGET:.0f} % of HV* after {hit['evaluations']:,} evaluations "
            f"({100 * hit['evaluations'] / size:.3f} % of the space), {hit['wall']:.1f} s"
        )
    else:
        print(
            f"-> {100 * TARGET:.0f} % of HV* not reached: {100 * last['hv']:.2f} % after "
            f"{last['evaluations']:,} evaluations, {last['wall']:.1f} s"
        )
    return summary


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main() -> None:
    dse.configure()  # float64 and the compilation cache, as the CLI does
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", choices=sorted(SPACES), default="full")
    ap.add_argument(
        "--samplers", default="nsga2,random,tpe", help=f"comma-separated, of {', '.join(SAMPLERS)}"
    )
    ap.add_argument("--budget", type=float, default=0.02, help="fraction of the space size")
    ap.add_argument(
        "--batch", type=int, help="trials per ask/tell round (default 1024; small: 256)"
    )
    ap.add_argument("--chunk", type=int, default=1024, help="Evaluator chunk (designs/call)")
    ap.add_argument("--seeds", default="0,1,2", help="NSGA-II seeds (other samplers: the first)")
    ap.add_argument("--tpe-trials", type=int, default=1024, help="TPE's budget (cost ~ trials^2)")
    ap.add_argument("--tpe-batch", type=int, default=256)
    ap.add_argument(
        "--stock-trials", type=int, default=16384, help="nsga2-stock's budget (cost ~ trials^2)"
    )
    ap.add_argument(
        "--stop-at",
        type=float,
        default=0.995,
        help="end a run once HV / HV* reaches this (1 = run the whole budget)",
    )
    ap.add_argument(
        "--cache",
        default=os.environ.get("DSE_BENCH_CACHE", "/tmp/dse-bench-optuna"),
        help="exhaustive-front cache folder ('' = none)",
    )
    ap.add_argument("--json", help="write every figure here")
    args = ap.parse_args()
    names = [s for s in args.samplers.split(",") if s]
    unknown = set(names) - set(SAMPLERS)
    if unknown:
        ap.error(f"unknown sampler(s) {sorted(unknown)}; known: {', '.join(SAMPLERS)}")
    seeds = _ints(args.seeds) or [0]
    args.batch = args.batch or (1024 if args.size == "full" else 256)

    mapping = SPACES[args.size]
    space = Space.from_mapping(mapping)
    objectives, constraints = parse_objectives(OBJECTIVES), parse_constraints(CONSTRAINTS)
    maximize = tuple(o.maximize for o in objectives)
    print(
        f"space '{args.size}': {space.size:,} points, {len(space.products)} products; "
        f"{MODEL} / {WORKLOAD}; objectives {OBJECTIVES}; constraints {CONSTRAINTS}; "
        f"HV reference {REFERENCE}"
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, optuna {optuna.__version__}"
    )

    t0 = time.perf_counter()
    stack = Stack(workload=WORKLOAD, sessions=SESSIONS)
    ev = Evaluator(stack, MODEL, space, chunk=args.chunk)
    ev.evaluate(ev.decode(np.arange(min(args.chunk, space.size))))  # compile outside the timings
    print(f"setup + compile: {time.perf_counter() - t0:.1f} s")

    cache = Path(args.cache) if args.cache else None
    ex = exhaustive(ev, objectives, constraints, cache, _cache_key(mapping, args.chunk))
    n_global = int(pareto_mask(ex["values"], maximize).sum())
    hv_star = hypervolume(ex["values"], REFERENCE, maximize)
    print(
        f"exhaustive: {int(ex['evaluated']):,} evaluated, {int(ex['feasible']):,} feasible, "
        f"{len(ex['ids'])} per-system front points ({n_global} on the global front), "
        f"HV* = {hv_star:.6g}, {float(ex['wall']):.1f} s "
        f"({int(ex['evaluated']) / float(ex['wall']):,.0f} designs/s)"
        + (" [cached]" if ex["cached"] else "")
    )

    budget = max(1, int(args.budget * space.size))
    marks = sorted(
        {
            int(f * space.size)
            for f in (0.0005, 0.001, 0.002, 0.005, 0.01, 0.015, 0.02)
            if f <= args.budget
        }
        | {budget}
    )
    print(
        f"Optuna budget: {budget:,} evaluations ({100 * args.budget:g} % of the space), "
        f"batch {args.batch} (TPE {args.tpe_batch}), in-memory storage; runs stop at "
        f"HV / HV* >= {100 * args.stop_at:g} %"
    )
    if any(n.startswith("nsga2") for n in names):
        t1 = time.perf_counter()
        same = check_fast_nsga2(ev, objectives, constraints, seeds[0])
        print(
            f"BatchNSGAII asks the same parameters as Optuna's NSGAIISampler (5 generations of "
            f"256 trials): {'yes' if same else 'NO'} ({time.perf_counter() - t1:.1f} s)"
        )

    summaries, curves = [], {}
    for name in names:
        factory, note = SAMPLERS[name]
        n, batch = budget, args.batch
        if name == "tpe":
            n, batch = min(budget, args.tpe_trials), args.tpe_batch
        elif name == "nsga2-stock":
            n = min(budget, args.stock_trials)
        for seed in seeds if name.startswith("nsga2") else seeds[:1]:
            rows, _ = optuna_run(
                ev,
                objectives,
                constraints,
                factory(seed, batch),
                n,
                batch,
                hv_star,
                args.stop_at if args.stop_at < 1 else None,
            )
            assert all(r["hv"] <= 1 + 1e-9 for r in rows), "Optuna beat the exhaustive front"
            curves[f"{name}/seed{seed}"] = rows
            summaries.append(
                report(f"{name}, seed {seed}, batch {batch}: {note}", rows, space.size, marks)
            )

    print(f"\nSummary ({space.size:,} points; exhaustive {float(ex['wall']):.0f} s)")
    print(
        f"| run | evaluations to {100 * TARGET:.0f} % of HV* | % of space | wall s to it | "
        "HV / HV* at the end |"
    )
    print("|---|---:|---:|---:|---:|")
    for s in summaries:
        hit = s["hit"]
        to_hit = (
            ("not reached", "-", "-")
            if hit is None
            else (
                f"{hit['evaluations']:,}",
                f"{100 * hit['evaluations'] / space.size:.3f}",
                f"{hit['wall']:.1f}",
            )
        )
        print(
            f"| {s['label'].split(':')[0]} | {' | '.join(to_hit)} | "
            f"{100 * s['final_hv']:.2f} % after {s['evaluations']:,} ({s['wall']:.0f} s) |"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                dict(
                    size=space.size,
                    hv_star=hv_star,
                    reference=REFERENCE,
                    exhaustive=dict(
                        evaluated=int(ex["evaluated"]),
                        feasible=int(ex["feasible"]),
                        wall=float(ex["wall"]),
                    ),
                    curves=curves,
                ),
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
