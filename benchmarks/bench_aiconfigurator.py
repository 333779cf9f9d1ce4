"""dse side by side with NVIDIA aiconfigurator on aiconfigurator's own default question.

The question (aiconfigurator ``cli default``): serve Qwen/Qwen3-32B on H200 SXM with 8 GPUs in
total, ISL 4000, OSL 500, SLA TTFT <= 2000 ms and TPOT <= 30 ms, aggregated and disaggregated
(xPyD) serving. Run from the repository root::

    .venv/bin/python benchmarks/bench_aiconfigurator.py

What it does:

1. makes ``.venv-aiconfigurator/`` (its own virtualenv, outside dse's) with ``pip install
   aiconfigurator`` unless it is already there;
2. runs ``aiconfigurator cli default ...`` in a subprocess, wall-clock timed (the whole command),
   and reads the Pareto frontier it writes (``<save-dir>/.../{agg,disagg}/pareto.csv``,
   tokens/s/gpu_cluster vs tokens/s/user);
3. runs aiconfigurator a second time, untimed, inside a small wrapper that counts the
   configurations it evaluates (agg worker points; disagg prefill/decode worker points and the
   xPyD combinations they can form);
4. runs dse on the same question in a fresh process, timed end to end (interpreter start,
   imports, JAX tracing and compilation, the search): once with an empty JAX compile cache
   (cold) and once with that cache populated (warm). dse's search is
   ``dse.search.exhaustive.exhaustive_search`` over ``Stack(workload=fixed_length_profile(4000,
   500))``, one call per pool topology (see ``dse_search``);
5. prints wall times, speed-up, configurations searched and both frontiers' best tokens/s/GPU
   at matched tokens/s/user, plus each tool's best point under the SLA.

``--json PATH`` also writes every figure as JSON. ``--skip-count`` skips step 3.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AIC_VENV = ROOT / ".venv-aiconfigurator"
AIC_BIN = AIC_VENV / "bin" / "aiconfigurator"
AIC_PY = AIC_VENV / "bin" / "python"

MODEL_HF, MODEL_DSE, SYSTEM = "Qwen/Qwen3-32B", "qwen3-32b", "h200_sxm"
TOTAL_GPUS, ISL, OSL, TTFT_MS, TPOT_MS = 8, 4000, 500, 2000.0, 30.0
SLA_TOK_S_USER = 1000.0 / TPOT_MS  # tok/s/user of a TPOT of exactly 30 ms
MATCH_AT = (10.0, 20.0, SLA_TOK_S_USER, 40.0, 50.0, 60.0, 75.0, 100.0, 150.0, 200.0)

AIC_ARGS = [
    "cli", "default", "--model", MODEL_HF, "--system", SYSTEM, "--total-gpus", str(TOTAL_GPUS),
    "--isl", str(ISL), "--osl", str(OSL), "--ttft", f"{TTFT_MS:g}", "--tpot", f"{TPOT_MS:g}",
]  # fmt: skip

# dse's space: every power-of-two layout, any xPyD split of at most 8 GPUs, fp8/bf16 weights
# and KV, 64 batch sizes per decode worker. Speculation off (aiconfigurator's default has none).
TP_PP = tuple((tp, pp) for tp in (1, 2, 4, 8) for pp in (1, 2, 4, 8) if tp * pp <= TOTAL_GPUS)
PREFILL_TP = (1, 2, 4, 8)
BITS = (8, 16)
BATCHES = tuple(
    list(range(1, 17)) + list(range(18, 33, 2)) + list(range(36, 65, 4))
    + list(range(72, 129, 8)) + list(range(144, 257, 16)) + list(range(272, 513, 16))
)  # fmt: skip
MARK = "@@dse-search-done@@"


# ---------------------------------------------------------------------------------------------
# aiconfigurator
# ---------------------------------------------------------------------------------------------
def _find_python() -> str | None:
    """A Python aiconfigurator supports (3.11-3.13), preferring 3.12."""
    pyenv = Path.home() / ".pyenv" / "versions"
    for minor in ("3.12", "3.13", "3.11"):
        found = shutil.which(f"python{minor}")
        if found:
            return found
        for cand in sorted(pyenv.glob(f"{minor}.*"), reverse=True):
            if (cand / "bin" / "python").exists():
                return str(cand / "bin" / "python")
    return None


def ensure_aiconfigurator() -> None:
    if AIC_BIN.exists():
        print(f"aiconfigurator: using {AIC_VENV.relative_to(ROOT)}/")
        return
    python = _find_python()
    if python is None:
        sys.exit("aiconfigurator needs Python 3.11-3.13 and none was found; install one and retry")
    print(f"aiconfigurator: creating {AIC_VENV.relative_to(ROOT)}/ with {python}; "
          "pip install aiconfigurator ...", flush=True)  # fmt: skip
    steps = [[python, "-m", "venv", str(AIC_VENV)], [str(AIC_PY), "-m", "pip", "install", "-q",
             "aiconfigurator"]]  # fmt: skip
    for cmd in steps:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            shutil.rmtree(AIC_VENV, ignore_errors=True)
            sys.exit(f"could not install aiconfigurator ({' '.join(cmd[-2:])}): {last}")


def aiconfigurator_version() -> str:
    code = "import importlib.metadata as m; print(m.version('aiconfigurator'))"
    return subprocess.run([str(AIC_PY), "-c", code], capture_output=True, text=True).stdout.strip()


def run_aiconfigurator(save_dir: Path) -> dict:
    """Time the whole ``aiconfigurator cli default`` command and read its frontier."""
    cmd = [str(AIC_BIN), *AIC_ARGS, "--save-dir", str(save_dir)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=save_dir)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        sys.exit(f"aiconfigurator failed (exit {proc.returncode}):\n{tail}")
    runs = sorted(save_dir.rglob("agg/pareto.csv"))
    if not runs:
        sys.exit(f"aiconfigurator wrote no agg/pareto.csv under {save_dir}")
    run_dir = runs[-1].parent.parent
    points, best = [], []
    for mode in ("agg", "disagg"):
        for name, sink in (("pareto.csv", points), ("best_config_topn.csv", best)):
            path = run_dir / mode / name
            if not path.exists():
                continue
            with open(path) as f:
                for row in csv.DictReader(f):
                    sink.append(_aic_point(mode, row))
    log = (proc.stdout + proc.stderr).splitlines()
    chosen = [ln.strip() for ln in log if "Best Experiment Chosen" in ln]
    done = [ln.split("completed in")[1].split()[0] for ln in log if "ments completed in" in ln]
    return dict(
        wall_s=wall,
        run_dir=str(run_dir),
        points=points,
        best_topn=best,
        chosen=chosen[0] if chosen else "",
        search_s=float(done[0]) if done else None,
    )


def _aic_point(mode: str, row: dict) -> dict:
    if mode == "agg":
        lay = f"tp{row['tp']}pp{row['pp']}"
        layout = f"agg {lay} x{TOTAL_GPUS // int(row['num_total_gpus'])} bs{row['bs']}"
    else:
        layout = (f"disagg {row['(p)workers']}P(tp{row['(p)tp']}) + {row['(d)workers']}D("
                  f"tp{row['(d)tp']}pp{row['(d)pp']}) bs{row['(d)bs']}")  # fmt: skip
    prec = row.get("gemm") or row.get("(d)gemm", "")
    kv = row.get("kvcache") or row.get("(d)kvcache", "")
    bits = {"bfloat16": 16, "fp8": 8, "float16": 16}
    if mode == "agg":
        tp, pp = int(row["tp"]), int(row["pp"])
        design = dict(tp=tp, pp=pp, decode_units=tp * pp, prefill_units=0, prefill_tp=1,
                      batch=int(row["bs"]))  # fmt: skip
    else:
        tp, pp, ptp = int(row["(d)tp"]), int(row["(d)pp"]), int(row["(p)tp"])
        design = dict(tp=tp, pp=pp, decode_units=int(row["(d)workers"]) * tp * pp,
                      prefill_units=int(row["(p)workers"]) * ptp, prefill_tp=ptp,
                      batch=int(row["(d)bs"]))  # fmt: skip
    design.update(weight_bits=bits.get(prec, 0), kv_bits=bits.get(kv, 0))
    return dict(
        mode=mode, layout=layout, precision=f"{prec}/{kv}", design=design,
        tok_s_user=float(row["tokens/s/user"]),
        tok_s_gpu=float(row["tokens/s/gpu_cluster"]),
        tok_s_gpu_replica=float(row["tokens/s/gpu"]),
        ttft_ms=float(row["ttft"]), tpot_ms=float(row["tpot"]),
        gpus=int(row["num_total_gpus"]),
    )  # fmt: skip


# Runs inside the aiconfigurator venv: wraps its worker predictors to count what it evaluates,
# then runs the same CLI command. Prints one JSON line.
_COUNT_SCRIPT = r"""
import json, sys
import aiconfigurator.sdk.sweep as sw
from aiconfigurator.main import main
agg_pts, worker_pts, cands = set(), set(), {}
_agg, _worker = sw.predict_agg_worker, sw.predict_disagg_worker
_cands = sw._get_disagg_worker_candidates
def _par(m):
    c = m.config
    return (c.tp_size, c.pp_size, c.attention_dp_size, c.moe_tp_size, c.moe_ep_size)
def agg(*, model, runtime_config, ctx_tokens, **kw):
    agg_pts.add((_par(model), runtime_config.batch_size, ctx_tokens))
    return _agg(model=model, runtime_config=runtime_config, ctx_tokens=ctx_tokens, **kw)
def worker(*, model, runtime_config, role, **kw):
    worker_pts.add((role, _par(model), runtime_config.batch_size))
    return _worker(model=model, runtime_config=runtime_config, role=role, **kw)
def candidates(**kw):
    df = _cands(**kw)
    cands[kw["role"]] = [int(g) for g in df["num_total_gpus"]]
    return df
sw.predict_agg_worker, sw.predict_disagg_worker = agg, worker
sw._get_disagg_worker_candidates = candidates
sys.argv = ["aiconfigurator"] + sys.argv[1:]
try:
    main()
finally:
    # xPyD combinations the rate matcher chooses from: every (prefill worker, decode worker)
    # candidate pair times every worker count x, y in 1..32 with x*gp + y*gd in {1, 2, 4, 8}.
    sizes = {1, 2, 4, 8}
    combos = 0
    for gp in cands.get("prefill", []):
        for gd in cands.get("decode", []):
            combos += sum(1 for x in range(1, 33) for y in range(1, 33) if x * gp + y * gd in sizes)
    roles = [r for r, _, _ in worker_pts]
    print("@@count@@" + json.dumps(dict(
        agg_points=len(agg_pts), prefill_points=roles.count("prefill"),
        decode_points=roles.count("decode"), prefill_candidates=len(cands.get("prefill", [])),
        decode_candidates=len(cands.get("decode", [])), disagg_combinations=combos)))
"""


def count_aiconfigurator(save_dir: Path) -> dict:
    cmd = [str(AIC_PY), "-c", _COUNT_SCRIPT, *AIC_ARGS, "--save-dir", str(save_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=save_dir)
    for line in proc.stdout.splitlines():
        if line.startswith("@@count@@"):
            return json.loads(line[len("@@count@@") :])
    print(f"note: could not count aiconfigurator's configurations (exit {proc.returncode})")
    return {}


# ---------------------------------------------------------------------------------------------
# dse
# ---------------------------------------------------------------------------------------------
def topologies(total: int = TOTAL_GPUS) -> list[dict]:
    """Every pool topology of at most ``total`` GPUs: aggregated workers (tp, pp), and xPyD with
    ``n_p`` prefill workers of ``prefill_tp`` GPUs and ``n_d`` decode workers of ``tp*pp``.
    An aggregated replica is one worker: more workers of the same layout have the same tok/s/GPU
    and tok/s/user (dse's aggregated model is per worker)."""
    out = [dict(tp=tp, pp=pp, decode_units=tp * pp, prefill_units=0, prefill_tp=1)
           for tp, pp in TP_PP]  # fmt: skip
    for ptp in PREFILL_TP:
        for n_p in range(1, total // ptp + 1):
            for tp, pp in TP_PP:
                for n_d in range(1, (total - n_p * ptp) // (tp * pp) + 1):
                    out.append(dict(tp=tp, pp=pp, decode_units=n_d * tp * pp,
                                    prefill_units=n_p * ptp, prefill_tp=ptp))  # fmt: skip
    return out


def cluster_factor(units: float, total: int = TOTAL_GPUS) -> float:
    """aiconfigurator's tokens/s/gpu_cluster: replicas of ``units`` GPUs fill ``total`` GPUs
    only in whole replicas; idle GPUs count in the denominator."""
    u = int(round(units))
    return (total // u) * u / total if u <= total else 0.0


def _space(stack, bits: tuple[int, ...]):
    """One space, a union of one product per pool topology (so one Evaluator, one compiled
    shape and one vectorized pass cover all of them)."""
    from dse.search.space import Product, Space

    h200, host = stack.hw_index[SYSTEM], stack.host_index["x86_pcie5"]
    products = []
    for topo in topologies():
        # The base config only supplies defaults: every pool, precision, speculation and tier
        # field that matters is set here (hardware and host tier as indices into the tables).
        fields = dict(
            system=("vr200_nvl72",), software=("default",),
            decode_hw=(h200,), prefill_hw=(h200,), ffn_hw=(h200,), host=(host,),
            tp=(topo["tp"],), pp=(topo["pp"],), ep=(1,), dp=(1,),
            decode_units=(topo["decode_units"],), prefill_tp=(topo["prefill_tp"],),
            prefill_ep=(1,), prefill_dp=(1,), prefill_units=(topo["prefill_units"],),
            ffn_units=(0,), spec_method=(0,), spec_k=(0,), prompt_cache=(0,),
            host_gb_per_gpu=(0,), storage_tb=(0,), storage_gbs=(0,), act_bits=(0,),
            weight_bits=tuple(bits), kv_bits=tuple(bits), batch=tuple(BATCHES),
        )  # fmt: skip
        products.append(Product("", tuple(fields), tuple(fields.values())))
    return Space(tuple(products))


def dse_search(stack, bits: tuple[int, ...]):
    """Every design of every topology in one vectorized pass (``Evaluator``), constraints
    applied, tok/s/GPU scaled to the 8-GPU cluster (idle GPUs count), one Pareto filter."""
    import numpy as np

    from dse.search.evaluate import Evaluator
    from dse.search.objectives import Constraint, meets
    from dse.search.pareto import Front

    space = _space(stack, bits)
    ev = Evaluator(stack, MODEL_DSE, space, chunk=256)  # the shape _evaluate uses: one compile
    ids = np.arange(space.size)
    cols = ev.decode(ids)
    m = ev.evaluate(cols)
    ok = meets(m, (Constraint("ttft_ms", None, TTFT_MS), Constraint("units", None, TOTAL_GPUS)))
    factor = np.array([cluster_factor(u) for u in m["units"]])
    values = np.stack([m["tok_s_user"], m["tok_s_per_unit"] * factor], axis=1)
    front = Front.empty((True, True)).merge(values[ok], ids[ok])
    # A batch above what fits is clipped to the most that fits: keep one design per front value.
    keep, seen = [], set()
    for j, v in enumerate(front.values):
        key = tuple(np.round(v, 9))
        if key not in seen:
            seen.add(key)
            keep.append(j)
    points = [space.point(int(front.ids[j])) for j in keep]
    return Front(front.maximize, front.values[keep], front.ids[keep]), points, space.size, int(ok.sum())


def _describe(p: dict) -> str:
    name = {8: "fp8", 16: "bf16"}
    prec = f"w{name[int(p['weight_bits'])]}/kv{name[int(p['kv_bits'])]}"
    lay = f"tp{p['tp']}pp{p['pp']}"
    if p["prefill_units"] == 0:
        return f"agg {lay} x{TOTAL_GPUS // p['decode_units']} bs{p['batch']} {prec}"
    n_p, n_d = p["prefill_units"] // p["prefill_tp"], p["decode_units"] // (p["tp"] * p["pp"])
    return f"disagg {n_p}P(tp{p['prefill_tp']}) + {n_d}D({lay}) bs{p['batch']} {prec}"


def _evaluate(stack, rows: list[dict]):
    """``stack.evaluate_values`` in pieces of 256 rows: the compiled shape the search used."""
    import pandas as pd

    parts = [stack.evaluate_values(rows[i : i + 256]) for i in range(0, len(rows), 256)]
    return pd.concat(parts, ignore_index=True)


def _front_rows(stack, points: list[dict]) -> list[dict]:
    """Full metrics of the front's designs (one evaluate call, same compiled shape)."""
    base = stack.design_values(MODEL_DSE, "vr200_nvl72", "default")
    df = _evaluate(stack, [{**base, **p} for p in points])
    rows = []
    for p, (_, m) in zip(points, df.iterrows()):
        units = p["decode_units"] + p["prefill_units"]
        rows.append(dict(
            mode="agg" if p["prefill_units"] == 0 else "disagg", layout=_describe(p),
            tok_s_user=float(m.tok_s_user),
            tok_s_gpu=float(m.tok_s_per_unit) * cluster_factor(units),
            tok_s_gpu_replica=float(m.tok_s_per_unit), ttft_ms=float(m.ttft_ms),
            tpot_ms=float(m.tpot_ms), gpus=int(units), bound=str(m.bound),
            decode_batch=float(m.decode_batch), feasible=bool(m.feasible),
        ))  # fmt: skip
    return rows


def _distinct(stack) -> int:
    """Designs of the searched space whose batch fits in memory (larger batches are clipped to
    the most that fits, so they repeat that design): per topology and precision, batches up to
    the decode worker's max_batch."""
    import numpy as np

    base = stack.design_values(MODEL_DSE, "vr200_nvl72", "default")
    rows, space = [], _space(stack, BITS)
    for product in space.products:
        point = {f: c[0] for f, c in zip(product.fields, product.choices)}
        for wb in BITS:
            for kb in BITS:
                p = {**point, "weight_bits": wb, "kv_bits": kb, "batch": 0}
                rows.append({**base, **p})
    df = _evaluate(stack, rows)
    batches = np.array(BATCHES, dtype=float)
    fits = df["feasible"].to_numpy()
    cap = df["max_batch"].to_numpy()
    return int(sum(int((batches <= c).sum()) for c, ok in zip(cap, fits) if ok))


def dse_child(out_path: str, aic_designs: str | None = None) -> None:
    """Runs in a fresh process (the parent times it): the whole dse answer to the question.
    After the search (the parent's clock has stopped): the search again in the warm process
    (steady-state time), a bf16-only search, the distinct-design count and, given
    ``aic_designs``, aiconfigurator's frontier designs evaluated by dse."""
    t0 = time.perf_counter()
    from dse.stack import Stack
    from dse.workload.fixed import fixed_length_profile

    stack = Stack(workload=fixed_length_profile(ISL, OSL))
    t_import = time.perf_counter() - t0
    front, points, evaluated, feasible = dse_search(stack, BITS)
    t_search = time.perf_counter() - t0 - t_import
    print(MARK, flush=True)  # the parent stops the clock here; diagnostics follow
    out = dict(
        import_s=t_import, search_s=t_search, evaluated=evaluated, feasible=feasible,
        topologies=len(topologies()), front=_front_rows(stack, points),
    )  # fmt: skip
    t1 = time.perf_counter()
    dse_search(stack, BITS)
    out["steady_search_s"] = time.perf_counter() - t1
    points16 = dse_search(stack, (16,))[1]
    out.update(front_bf16=_front_rows(stack, points16), distinct=_distinct(stack))
    if aic_designs:
        # the same pools, layout, batch and dtypes; every other field as in dse's space
        template = _space(stack, BITS).point(0)
        designs = [{**template, **d} for d in json.loads(Path(aic_designs).read_text())]
        out["aic_in_dse"] = _front_rows(stack, designs) if designs else []
    Path(out_path).write_text(json.dumps(out))


def run_dse(cache_dir: str, aic_designs: str | None = None) -> dict:
    """Time a fresh dse process to the end of its search (wall clock, from process start)."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out_path = f.name
    env = {**os.environ, "DSE_JAX_CACHE": cache_dir}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--dse-child", out_path]
    if aic_designs:
        cmd += ["--aic-designs", aic_designs]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    wall = None
    for line in proc.stdout:
        if line.strip() == MARK:
            wall = time.perf_counter() - t0
    if proc.wait() != 0 or wall is None:
        sys.exit(f"the dse run failed (exit {proc.returncode})")
    out = json.loads(Path(out_path).read_text())
    os.unlink(out_path)
    out["wall_s"] = wall
    return out


# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------
def best_at(points: list[dict], min_user: float) -> dict | None:
    ok = [p for p in points if p["tok_s_user"] >= min_user]
    return max(ok, key=lambda p: p["tok_s_gpu"]) if ok else None


def _fmt(p: dict | None) -> str:
    return "-" if p is None else f"{p['tok_s_gpu']:8.1f}"


def report(aic: dict, counts: dict, cold: dict, warm: dict, version: str) -> dict:
    dse_front, dse16 = warm["front"], warm["front_bf16"]
    speed_cold, speed_warm = aic["wall_s"] / cold["wall_s"], aic["wall_s"] / warm["wall_s"]
    aic_space = counts.get("agg_points", 0) + counts.get("disagg_combinations", 0)
    print()
    print(f"Question: {MODEL_HF} on {TOTAL_GPUS}x {SYSTEM}, ISL {ISL}, OSL {OSL}, "
          f"TTFT <= {TTFT_MS:g} ms, TPOT <= {TPOT_MS:g} ms, agg + disagg")  # fmt: skip
    print(f"aiconfigurator {version}: {' '.join(['aiconfigurator', *AIC_ARGS])}")
    print()
    print("wall time (whole command, fresh process)")
    print(f"  aiconfigurator cli default          {aic['wall_s']:7.2f} s")
    print(f"  dse, cold (empty JAX compile cache) {cold['wall_s']:7.2f} s   "
          f"speed-up {speed_cold:5.2f}x")  # fmt: skip
    print(f"  dse, warm JAX compile cache         {warm['wall_s']:7.2f} s   "
          f"speed-up {speed_warm:5.2f}x")  # fmt: skip
    target = "met" if min(speed_cold, speed_warm) >= 10 else "NOT met"
    print(f"  target dse >= 10x faster in wall time: {target}")
    print("search alone (no process start, import, tracing or compilation)")
    if aic.get("search_s") is not None:
        print(f"  aiconfigurator 'All experiments completed in' {aic['search_s']:7.2f} s")
    print(f"  dse, the same search again in the warm process {warm['steady_search_s']:6.2f} s   "
          f"({warm['evaluated'] / warm['steady_search_s']:,.0f} designs/s)")  # fmt: skip
    print(f"  dse warm run: import + Stack {warm['import_s']:.2f} s, first search "
          f"{warm['search_s']:.2f} s (JAX tracing, lowering and compile-cache load "
          f"~{warm['search_s'] - warm['steady_search_s']:.2f} s); cold run first search "
          f"{cold['search_s']:.2f} s")  # fmt: skip
    print()
    print("configurations searched")
    if counts:
        print(f"  aiconfigurator: {aic_space:,} = {counts['agg_points']:,} agg worker points "
              f"(parallel x batch x ctx-tokens) + {counts['disagg_combinations']:,} xPyD "
              f"combinations of {counts['prefill_candidates']} prefill x "
              f"{counts['decode_candidates']} decode worker candidates "
              f"({counts['prefill_points'] + counts['decode_points']} worker points)")  # fmt: skip
    print(f"  dse:            {warm['evaluated']:,} designs evaluated ({warm['topologies']} pool "
          f"topologies x 2 weight x 2 KV precisions x {len(BATCHES)} batches); "
          f"{warm['distinct']:,} distinct (batch fits in memory), "
          f"{warm['feasible']:,} meet TTFT <= {TTFT_MS:g} ms")  # fmt: skip
    print()
    print("best tokens/s/GPU (8-GPU cluster) at tokens/s/user >= x (TTFT <= 2000 ms on both)")
    print(f"  {'tok/s/user >=':>13} {'aiconfigurator':>14} {'dse':>7} {'dse bf16':>8}   "
          f"{'aiconfigurator design':<42} dse design")  # fmt: skip
    table = []
    for x in MATCH_AT:
        a, d, d16 = best_at(aic["points"], x), best_at(dse_front, x), best_at(dse16, x)
        if a is None and d is None:
            continue
        table.append(dict(min_user=x, aic=a, dse=d, dse_bf16=d16))
        print(f"  {x:>13.1f} {_fmt(a):>14} {_fmt(d):>7} {_fmt(d16):>8}   "
              f"{a['layout'] if a else '':<42} {d['layout'] if d else ''}")  # fmt: skip
    print()
    print(f"best under the SLA (TTFT <= {TTFT_MS:g} ms and TPOT <= {TPOT_MS:g} ms)")
    sla = {}
    for name, pts in (("aiconfigurator", aic["points"]), ("dse", dse_front),
                      ("dse bf16", dse16)):  # fmt: skip
        p = best_at([q for q in pts if q["ttft_ms"] <= TTFT_MS], SLA_TOK_S_USER)
        sla[name] = p
        if p:
            print(f"  {name:<15} {p['tok_s_gpu']:7.1f} tok/s/GPU at {p['tok_s_user']:6.1f} "
                  f"tok/s/user, TTFT {p['ttft_ms']:6.0f} ms, TPOT {p['tpot_ms']:5.1f} ms: "
                  f"{p['layout']}")  # fmt: skip
    if aic["chosen"]:
        print(f"  (aiconfigurator's own summary: {aic['chosen']})")
    same = _same_designs(aic["points"], warm.get("aic_in_dse") or [], table, sla)
    if same:
        print()
        print("aiconfigurator's designs above, evaluated by dse (same pools, layout, batch, bf16)")
        print(f"  {'design':<42} {'tok/s/user':>16} {'tok/s/GPU':>15} {'TTFT ms':>13} "
              f"{'TPOT ms':>13}  dse bound")  # fmt: skip
        print(f"  {'':<42} {'aic':>7} {'dse':>8} {'aic':>7} {'dse':>7} {'aic':>6} {'dse':>6} "
              f"{'aic':>6} {'dse':>6}")  # fmt: skip
        for a, d in same:
            print(
                f"  {a['layout']:<42} {a['tok_s_user']:7.1f} {d['tok_s_user']:8.1f} "
                f"{a['tok_s_gpu']:7.1f} {d['tok_s_gpu']:7.1f} {a['ttft_ms']:6.0f} "
                f"{d['ttft_ms']:6.0f} {a['tpot_ms']:6.1f} {d['tpot_ms']:6.1f}  {d['bound']}"
            )
    print()
    print(
        "notes: tokens/s/GPU is output tokens/s over every GPU of the 8-GPU cluster (prefill +\n"
        "  decode pools; idle GPUs left by replicas that do not divide 8 count too). In\n"
        "  aiconfigurator's source tokens/s/gpu = tokens/s / num_total_gpus of one replica\n"
        "  (prefill + decode workers; sdk/picking.py) and tokens/s/gpu_cluster scales it by the\n"
        "  GPUs that whole replicas fill (sdk/pareto_analysis.py); dse's tok_s_per_unit is\n"
        "  output_tok_s / units over all pools, scaled the same way here. Speculative decoding\n"
        "  is off on both sides. aiconfigurator's default search is bf16 weights and KV for\n"
        "  this bf16 checkpoint; dse also searches fp8 ('dse bf16' is its bf16-only front)."
    )
    return dict(
        version=version, aiconfigurator_wall_s=aic["wall_s"],
        aiconfigurator_search_s=aic.get("search_s"), dse_cold_wall_s=cold["wall_s"],
        dse_warm_wall_s=warm["wall_s"], speedup_cold=speed_cold, speedup_warm=speed_warm,
        aiconfigurator_counts=counts, aiconfigurator_configurations=aic_space,
        dse_evaluated=warm["evaluated"], dse_distinct=warm["distinct"],
        dse_feasible=warm["feasible"], dse_warm=warm, dse_cold=cold, table=table, sla=sla,
        same_designs=same, aiconfigurator_points=aic["points"],
    )  # fmt: skip


def _same_designs(aic_points, aic_in_dse, table, sla) -> list[tuple[dict, dict]]:
    """(aiconfigurator point, dse's evaluation of its design) for the designs shown above."""
    shown = [r["aic"] for r in table if r["aic"]] + ([sla["aiconfigurator"]] if sla.get(
        "aiconfigurator") else [])  # fmt: skip
    out, seen = [], set()
    for p in shown:
        key = p["layout"]
        if key in seen or len(aic_in_dse) != len(aic_points):
            continue
        seen.add(key)
        out.append((p, aic_in_dse[aic_points.index(p)]))
    return sorted(out, key=lambda ad: ad[0]["tok_s_user"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dse-child", help=argparse.SUPPRESS)
    parser.add_argument("--aic-designs", help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also write every figure to this JSON file")
    parser.add_argument(
        "--skip-count",
        action="store_true",
        help="skip the instrumented aiconfigurator run that counts configurations",
    )
    args = parser.parse_args()
    if args.dse_child:
        dse_child(args.dse_child, args.aic_designs)
        return
    ensure_aiconfigurator()
    version = aiconfigurator_version()
    with tempfile.TemporaryDirectory(prefix="aic-bench-") as tmp:
        tmp = Path(tmp)
        (tmp / "run").mkdir()
        (tmp / "count").mkdir()
        print(f"running aiconfigurator {version} (timed) ...", flush=True)
        aic = run_aiconfigurator(tmp / "run")
        print(f"  {aic['wall_s']:.2f} s; frontier from {Path(aic['run_dir']).name}/"
              "{agg,disagg}/pareto.csv", flush=True)  # fmt: skip
        counts = {}
        if not args.skip_count:
            print("running aiconfigurator again, instrumented, to count configurations ...",
                  flush=True)  # fmt: skip
            counts = count_aiconfigurator(tmp / "count")
        cache = tmp / "jax-cache"
        print("running dse cold (fresh process, empty JAX compile cache) ...", flush=True)
        cold = run_dse(str(cache))
        print(f"  {cold['wall_s']:.2f} s", flush=True)
        print("running dse warm (fresh process, JAX compile cache from the cold run) ...",
              flush=True)  # fmt: skip
        designs = tmp / "aic_designs.json"
        designs.write_text(json.dumps([p["design"] for p in aic["points"]]))
        warm = run_dse(str(cache), str(designs))
        print(f"  {warm['wall_s']:.2f} s", flush=True)
    result = report(aic, counts, cold, warm, version)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=str))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
