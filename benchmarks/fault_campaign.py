"""Fault campaign: many ``kill -9`` / resume rounds against the exhaustive and Optuna engines.

The CI test (tests/search/test_faults.py) runs 3 kills per engine on every commit; this runs
``--campaigns`` independent campaigns of ``--rounds`` kills each per engine (a new random
schedule per campaign) and prints, per engine: kills that landed mid-search, campaigns whose
final tables (frontier/best, CSV + parquet) were byte-identical to an uninterrupted run, and for
Optuna whether the stored trials (numbers, parameters, values) were identical too. Not part of
``scripts/dev bench`` (minutes of process start-ups); run it as

    .venv/bin/python benchmarks/fault_campaign.py --campaigns 5 --rounds 4
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.search.test_faults import (  # noqa: E402
    EXHAUSTIVE,
    OPTUNA,
    _kill_and_resume,
    _reference,
    _same_tables,
    _trials,
)


def campaign(engine: str, args: list[str], written: str, campaigns: int, rounds: int) -> dict:
    out = Path(tempfile.mkdtemp(prefix=f"dse-faults-{engine}-"))
    run_dir = out / "kv_tier_sizing"
    t0 = time.perf_counter()
    window = _reference(args, out, run_dir / "ref" / written)
    kills, identical, trials_identical = 0, 0, 0
    for c in range(campaigns):
        run = f"cut{c}"
        kills += _kill_and_resume(args, out, run_dir / run / written, window, 1000 + c,
                                  rounds=rounds, run=run)  # fmt: skip
        try:
            _same_tables(out, run)
            identical += 1
        except AssertionError as e:
            print(f"  {engine} campaign {c}: {e}")
        if written.endswith(".journal"):
            same = _trials(run_dir / "ref" / written) == _trials(run_dir / run / written)
            trials_identical += same
    return dict(engine=engine, campaigns=campaigns, kills=kills, identical=identical,
                trials_identical=trials_identical if written.endswith(".journal") else "-",
                seconds=round(time.perf_counter() - t0, 1), folder=str(out))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--campaigns", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=4, help="kills per campaign")
    a = ap.parse_args()
    rows = [
        campaign("exhaustive", EXHAUSTIVE, "checkpoint.npz", a.campaigns, a.rounds),
        campaign("optuna", OPTUNA, "optuna.journal", a.campaigns, a.rounds),
    ]
    print(f"{'engine':<11} {'campaigns':>9} {'kills landed':>12} {'tables identical':>16} "
          f"{'trials identical':>16} {'seconds':>8}")  # fmt: skip
    for r in rows:
        print(f"{r['engine']:<11} {r['campaigns']:>9} {r['kills']:>12} "
              f"{r['identical']:>13}/{r['campaigns']:<2} {r['trials_identical']!s:>16} "
              f"{r['seconds']:>8}")  # fmt: skip


if __name__ == "__main__":
    main()
