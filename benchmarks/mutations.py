"""Mutation check: scale core cost formulas by 2x or 0.5x and make sure some test notices.

Each mutation names a file of the package, an exact source snippet (it must occur exactly once)
and its replacement. For each one the script copies the project (``dse/``, ``tests/``,
``conf/``, ``hydra_plugins/``, ``pyproject.toml``; never ``.venv`` or results) into a temporary
directory, applies the replacement there (the working tree is never touched), and runs

    python -m pytest -x -q -p no:cacheprovider <the mutation's test files>

with ``PYTHONPATH`` and ``DSE_CONF`` pointing at the copy (it checks that ``dse.__file__`` is
the copy's before running). A mutation is *caught* when a test fails and *survives* when every
test passes. An unmutated copy runs first (the baseline): if it fails, every verdict would be
meaningless, so the script stops. Prints a table; exits 1 if any mutation survives, 2 on a
missing snippet or a failing baseline, 0 otherwise.

    .venv/bin/python benchmarks/mutations.py                      # all mutations
    .venv/bin/python benchmarks/mutations.py --only allreduce_x2 --only tiers_kv_x2
    .venv/bin/python benchmarks/mutations.py --tests tests/model  # same tests for every one
    .venv/bin/python benchmarks/mutations.py --list               # the mutations, no runs
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("dse", "tests", "conf", "hydra_plugins", "pyproject.toml")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")

COLLECTIVES = ("tests/model/test_collectives.py",)
COUNTS = ("tests/model/test_tier_counts.py",)
LAYER = ("tests/model/test_layer.py",)
TIERS = ("tests/model/test_tier_counts.py", "tests/model/test_tiers.py")
KERNELS = ("tests/model/test_kernels.py", "tests/scenarios/test_framework.py")
CALIBRATION = ("tests/calibration/test_shipped.py",)
SERVING = ("tests/model/test_serving.py", "tests/model/test_fixed_workload.py")


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str  # relative to the project root
    find: str  # exact snippet; must occur exactly once in the file
    replace: str
    description: str
    tests: tuple[str, ...]


MUTATIONS: tuple[Mutation, ...] = (
    # Issue 14: the fixed costs of what runs (kernels, collectives' latency, framework host work).
    Mutation(
        "mla_kernels_x2", "dse/model/kernels.py",
        "MLA_ATTENTION_KERNELS = 10.0", "MLA_ATTENTION_KERNELS = 20.0",
        "kernels of an MLA attention layer x2", KERNELS,
    ),
    Mutation(
        "moe_kernels_x0.5", "dse/model/kernels.py",
        "MOE_KERNELS = 8.0", "MOE_KERNELS = 4.0",
        "kernels of an MoE layer x0.5", KERNELS,
    ),
    Mutation(
        "kernel_time_x2", "dse/model/step.py",
        "us = launched * e.kernel_us", "us = 2.0 * launched * e.kernel_us",
        "fixed time of every kernel x2", KERNELS,
    ),
    Mutation(
        "host_work_x2", "dse/model/step.py",
        "host = step + seqs * per_seq", "host = 2.0 * (step + seqs * per_seq)",
        "framework host work per step x2", KERNELS,
    ),
    Mutation(
        "a2a_latency_x2", "dse/model/collectives.py",
        "soft_max(t_in, t_out) + 2.0 * one * 1e-6", "soft_max(t_in, t_out) + 4.0 * one * 1e-6",
        "MoE dispatch/combine latency x2", KERNELS,
    ),
    Mutation(
        "moe_tp_reduce_dropped", "dse/model/step.py",
        "return reduce + a2a.scale(jnp.where(replicated, 0.0, 1.0))",
        "return reduce.scale(0.5) + a2a.scale(jnp.where(replicated, 0.0, 1.0))",
        "MoE all-reduce behind TP attention x0.5", KERNELS,
    ),
    Mutation(
        "admitted_prompt_mixture_dropped", "dse/model/serving.py",
        "w = jnp.minimum(prompts, 1.0)", "w = jnp.ones_like(prompts)",
        "every iteration admits a whole prompt (mixture of iterations dropped)", CALIBRATION,
    ),
    # ----- collectives -------------------------------------------------------------------------
    Mutation(
        "allreduce_x2", "dse/model/collectives.py",
        "t_in + t_out", "2.0 * (t_in + t_out)",
        "all-reduce bandwidth time (inside + across domains) x2", COLLECTIVES,
    ),
    Mutation(
        "allreduce_x0.5", "dse/model/collectives.py",
        "t_in + t_out", "0.5 * (t_in + t_out)",
        "all-reduce bandwidth time x0.5", COLLECTIVES,
    ),
    Mutation(
        "allreduce_across_x2", "dse/model/collectives.py",
        "safe_div(safe_div(nbytes, inside), _scaleout_rate(hw, eff))",
        "2.0 * safe_div(safe_div(nbytes, inside), _scaleout_rate(hw, eff))",
        "hierarchical all-reduce: the cross-domain (NIC) ring x2", COLLECTIVES,
    ),
    Mutation(
        "mesh_peer_links_x2", "dse/model/collectives.py",
        "hw.scaleup_peer_bandwidth * peers", "hw.scaleup_peer_bandwidth * peers * 2.0",
        "switchless mesh: per-peer link rate x2", COLLECTIVES,
    ),
    Mutation(
        "alltoall_x2", "dse/model/collectives.py",
        "soft_max(t_in, t_out)", "2.0 * soft_max(t_in, t_out)",
        "MoE all-to-all bandwidth time x2", COLLECTIVES,
    ),
    Mutation(
        "alltoall_x0.5", "dse/model/collectives.py",
        "soft_max(t_in, t_out)", "0.5 * soft_max(t_in, t_out)",
        "MoE all-to-all bandwidth time x0.5", COLLECTIVES,
    ),
    Mutation(
        "send_recv_x2", "dse/model/collectives.py",
        "return safe_div(nbytes, rate) + lat", "return 2.0 * safe_div(nbytes, rate) + lat",
        "pipeline send/recv bandwidth time x2", COLLECTIVES,
    ),
    Mutation(
        "step_alltoall_bytes_x2", "dse/model/step.py",
        "per_copy = a.hidden_size * (dispatch_bytes + ACT_BYTES)",
        "per_copy = 2.0 * a.hidden_size * (dispatch_bytes + ACT_BYTES)",
        "bytes of one dispatched+combined token copy x2 (step helper)", COLLECTIVES,
    ),
    Mutation(
        "step_tp_allreduce_bytes_x0.5", "dse/model/step.py",
        "nbytes = tokens * s.arch.hidden_size * ACT_BYTES",
        "nbytes = 0.5 * tokens * s.arch.hidden_size * ACT_BYTES",
        "bytes of a TP all-reduce x0.5 (step helper)", COLLECTIVES,
    ),
    # ----- KV bytes, tiers, hand-offs ----------------------------------------------------------
    Mutation(
        "tiers_kv_x2", "dse/model/tiers.py",
        "return per_layer * layers", "return 2.0 * per_layer * layers",
        "cache-tier KV bytes per token x2", TIERS,
    ),
    Mutation(
        "kv_layer_x0.5", "dse/model/layer.py",
        "return jnp.where(arch.mla > 0, mla, gqa) * per_elem",
        "return jnp.where(arch.mla > 0, mla, gqa) * per_elem * 0.5",
        "KV bytes per token per layer x0.5", LAYER + COUNTS,
    ),
    Mutation(
        "restore_host_x2", "dse/model/tiers.py",
        "safe_div(host_tokens * bytes_per_token, host_bandwidth, 1e9)",
        "2.0 * safe_div(host_tokens * bytes_per_token, host_bandwidth, 1e9)",
        "host-tier restore time x2", TIERS,
    ),
    Mutation(
        "restore_storage_x0.5", "dse/model/tiers.py",
        "safe_div(storage_tokens * bytes_per_token, storage_bandwidth, 1e9)",
        "0.5 * safe_div(storage_tokens * bytes_per_token, storage_bandwidth, 1e9)",
        "storage-tier restore time x0.5", TIERS,
    ),
    Mutation(
        "fixed_prefix_ignored", "dse/model/fixed_workload.py",
        "hit_curve=jnp.full(grid.shape, hit)", "hit_curve=jnp.full(grid.shape, 0.0 * hit)",
        "dse predict rows' cached prefix ignored (fixed_workload.py)", SERVING,
    ),
    Mutation(
        "fixed_disagg_batch_per_pool", "dse/model/fixed_workload.py",
        "batch=jnp.where(d.concurrency > 0, d.concurrency / workers, 0.0)",
        "batch=jnp.where(d.concurrency > 0, d.concurrency, 0.0)",
        "disaggregated rows' clients not spread over decode workers (fixed_workload.py)",
        SERVING,
    ),
    Mutation(
        "harness_ignored", "dse/model/serving.py",
        'jnp.where(d.harness == HARNESSES.index("in_process"), 0.0, served.request)',
        "served.request",
        "in-process benchmark rows charged the API server's request path (serving.py)", SERVING,
    ),
    Mutation(
        "balance_wait_whole_round", "dse/model/system_solve.py",
        "held = 0.5 * jnp.minimum(", "held = 1.0 * jnp.minimum(",
        "TRT-LLM attention-DP balance: a prompt waits a whole round (system_solve.py)", SERVING,
    ),
    Mutation(
        "pools_handoff_x2", "dse/model/pools.py",
        "safe_div(isl * self.kv_bytes_per_token, handoff_bw)",
        "2.0 * safe_div(isl * self.kv_bytes_per_token, handoff_bw)",
        "system KV hand-off time x2 (pools.py)", COUNTS,
    ),
    Mutation(
        "afd_link_bytes_x2", "dse/model/afd.py",
        "per_layer = 2.0 * tokens", "per_layer = 4.0 * tokens",
        "AFD activation bytes per layer x2", COUNTS,
    ),
    Mutation(
        "afd_link_bandwidth_x0.5", "dse/model/afd.py",
        "return jnp.minimum(worker, ffn_share) * att.eff.link_eff",
        "return jnp.minimum(worker, ffn_share) * att.eff.link_eff * 0.5",
        "AFD link bandwidth x0.5", COUNTS,
    ),
    # ----- compute and memory of a layer -------------------------------------------------------
    Mutation(
        "gemm_weight_bytes_x2", "dse/model/layer.py",
        "nbytes = params * bytes_per_element(weight_bits)",
        "nbytes = 2.0 * params * bytes_per_element(weight_bits)",
        "GEMM weight bytes x2", LAYER,
    ),
    Mutation(
        "attention_flops_x2", "dse/model/layer.py",
        "flops = flops_prefill + flops_decode", "flops = 2.0 * (flops_prefill + flops_decode)",
        "attention FLOPs x2", LAYER,
    ),
)  # fmt: skip


def copy_project(dest: Path) -> None:
    for item in COPIED:
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=IGNORED)
        elif src.exists():
            shutil.copy2(src, dest / item)


def apply(copy: Path, m: Mutation) -> None:
    path = copy / m.file
    text = path.read_text()
    count = text.count(m.find)
    if count != 1:
        raise SnippetError(f"{m.name}: snippet {m.find!r} occurs {count} times in {m.file}")
    path.write_text(text.replace(m.find, m.replace))


class SnippetError(RuntimeError):
    pass


def environment(copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(copy)
    env["DSE_CONF"] = str(copy / "conf")
    env.pop("PYTEST_ADDOPTS", None)
    return env


def check_import(copy: Path, env: dict[str, str]) -> None:
    out = subprocess.run(
        [sys.executable, "-c", "import dse; print(dse.__file__)"],
        cwd=copy, env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    if not Path(out).resolve().is_relative_to(copy.resolve()):
        raise RuntimeError(f"the copy imports dse from {out}, not from {copy}")


FAILED = re.compile(r"^(FAILED|ERROR) (\S+)", re.M)


def run_tests(copy: Path, tests: tuple[str, ...], timeout: float) -> tuple[str, str, float]:
    """(status, first failing test or '', seconds): status is pass / fail / error / timeout."""
    env = environment(copy)
    check_import(copy, env)
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-rfE", "-p", "no:cacheprovider", *tests]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True,
                              timeout=timeout)  # fmt: skip
    except subprocess.TimeoutExpired:
        return "timeout", "", time.perf_counter() - t0
    seconds = time.perf_counter() - t0
    if proc.returncode == 0:
        return "pass", "", seconds
    hit = FAILED.search(proc.stdout)
    if proc.returncode == 1 and hit:
        return "fail", hit.group(2), seconds
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
    return "error", hit.group(2) if hit else " | ".join(tail), seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", action="append", default=[], metavar="NAME",
                    help="run only this mutation (repeat or comma-separate for several)")
    ap.add_argument("--tests", nargs="+", metavar="PATH",
                    help="test files/dirs to run for every mutation (default: each one's own)")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per pytest run")
    ap.add_argument("--list", action="store_true", help="print the mutations and exit")
    ap.add_argument("--no-baseline", action="store_true", help="skip the unmutated run")
    ap.add_argument("--keep", action="store_true", help="keep the temporary copies")
    args = ap.parse_args(argv)  # fmt: skip

    wanted = {n for item in args.only for n in item.split(",") if n}
    unknown = wanted - {m.name for m in MUTATIONS}
    if unknown:
        ap.error(f"unknown mutation(s) {sorted(unknown)}; --list shows them")
    chosen = [m for m in MUTATIONS if not wanted or m.name in wanted]
    override = tuple(args.tests) if args.tests else None

    if args.list:
        for m in chosen:
            print(f"{m.name:30s} {m.file:28s} {m.description}")
        return 0

    # Check every snippet against the working tree first: fail loudly before any long run.
    for m in chosen:
        count = (ROOT / m.file).read_text().count(m.find)
        if count != 1:
            print(f"ERROR: {m.name}: snippet {m.find!r} occurs {count} times in {m.file} "
                  "(exactly once required); update MUTATIONS", file=sys.stderr)  # fmt: skip
            return 2

    work = Path(tempfile.mkdtemp(prefix="dse-mutations-"))
    rows: list[tuple[str, str, str, str, float]] = []
    try:
        if not args.no_baseline:
            baseline_tests = override or tuple(sorted({t for m in chosen for t in m.tests}))
            copy = work / "baseline"
            copy_project(copy)
            status, first, secs = run_tests(copy, baseline_tests, args.timeout)
            print(f"baseline (unmutated copy): {status} in {secs:.0f} s", flush=True)
            if status != "pass":
                print(f"ERROR: the unmutated copy does not pass its tests ({first}); "
                      "mutation verdicts would be meaningless", file=sys.stderr)  # fmt: skip
                return 2
        for m in chosen:
            copy = work / m.name
            copy_project(copy)
            apply(copy, m)
            status, first, secs = run_tests(copy, override or m.tests, args.timeout)
            verdict = {"fail": "caught", "pass": "SURVIVED"}.get(status, status)
            rows.append((m.name, m.file, verdict, first, secs))
            print(f"{m.name}: {verdict} {first} ({secs:.0f} s)", flush=True)
            if not args.keep:
                shutil.rmtree(copy, ignore_errors=True)
    except SnippetError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 2
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"copies kept in {work}")

    print()
    print("| mutation | file | verdict | first failing test | s |")
    print("|---|---|---|---|--:|")
    for name, file, verdict, first, secs in rows:
        print(f"| {name} | {file} | {verdict} | {first} | {secs:.0f} |")
    survivors = [r[0] for r in rows if r[2] == "SURVIVED"]
    broken = [r[0] for r in rows if r[2] not in ("caught", "SURVIVED")]
    print()
    print(f"{len(rows)} mutations: {len(rows) - len(survivors) - len(broken)} caught, "
          f"{len(survivors)} survived, {len(broken)} error/timeout")  # fmt: skip
    if survivors:
        print("survivors: " + ", ".join(survivors))
    if broken:
        print("errors (neither caught nor survived): " + ", ".join(broken))
    return 1 if survivors else (2 if broken else 0)


if __name__ == "__main__":
    sys.exit(main())
