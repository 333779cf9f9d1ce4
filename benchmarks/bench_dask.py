"""Exhaustive sweep in one process vs on a 2-worker Dask LocalCluster (``search=dask``).

Runs ``dse search`` on ``kv_tier_sizing`` widened to ~82K designs (the kill test's space, every
point through the model, only the front kept), twice per engine so the second run of each is
warm (JAX's caches, exported kernels), and prints wall times and designs/s side by side, with
a check that both write the same frontier bytes.

    .venv/bin/python benchmarks/bench_dask.py [--workers 2]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPACE = ["study=kv_tier_sizing", "sessions=16", "report.enabled=false", "ui.output=quiet",
         "ui.progress=none", "search.keep_points=false",
         "++space.choices.batch=[4,8,16,24,32,48,64,96,128]",
         "++space.choices.prefill_units=[4,8,12,16,24,32]",
         "++space.choices.storage_tb=[0,25,50,100,200,500,1000]",
         "++space.choices.storage_gbs=[0,50,100,200,400,1000]"]  # fmt: skip


def _search(args: list[str], out: Path, run: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "dse.cli", "search", *SPACE, *args, f"results_dir={out}",
         f"run={run}"],
        check=True,
    )  # fmt: skip
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    workers = ap.parse_args().workers
    engines = {
        "one process (search=exhaustive)": [],
        f"Dask LocalCluster, {workers} workers (search=dask)": [
            "search=dask",
            f"search.workers={workers}",
        ],
    }
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        rows = []
        for i, (name, args) in enumerate(engines.items()):
            first = _search(args, out, f"e{i}a")
            warm = _search(args, out, f"e{i}b")
            rows.append((name, first, warm))
        import json

        n = json.loads((out / "kv_tier_sizing" / "e0b" / "summary.json").read_text())["evaluated"]
        same = all(
            (out / "kv_tier_sizing" / "e0b" / t).read_bytes()
            == (out / "kv_tier_sizing" / "e1b" / t).read_bytes()
            for t in ("frontier.csv", "best.csv", "frontier.parquet")
        )
    print(f"exhaustive sweep of {n:,} designs (kv_tier_sizing widened), wall time of dse search:")
    for name, first, warm in rows:
        print(f"  {name:44s} first {first:6.1f} s   warm {warm:6.1f} s ({n / warm:,.0f} designs/s)")
    print(f"  same frontier and best tables: {same}")


if __name__ == "__main__":
    main()
