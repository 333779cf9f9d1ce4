"""Speed of the whole-stack system model: system designs evaluated per second on this CPU.

Random designs over the shipped system configs (GPU pools, xPyD, AFD with LPX, LPX decode),
software settings, batch, pool sizes, tiers and speculation, for Kimi-K2 serving the agentic
coding workload. Prints compile time and steady-state designs/s.
"""

from __future__ import annotations

import time

import numpy as np

import dse
from dse.model.system_batched import evaluate_systems
from dse.model.system_design import SYSTEM_FIELDS, system_design
from dse.stack import Stack

N = 1 << 16


def main() -> None:
    dse.configure()  # float64 and the compilation cache, as the CLI does
    st = Stack(workload="agentic_coding", sessions=32)
    rng = np.random.default_rng(0)
    systems = ["gb200_nvl72", "gb300_nvl72", "vr200_nvl72", "vr200_lpx_afd", "vr200_lpx_decode"]
    base = [st.design_values("kimi-k2", s, sw) for s in systems for sw in ("default", "nvfp4_mtp")]
    pick = rng.integers(0, len(base), N)
    cols = {f: np.array([base[i][f] for i in pick], dtype=np.float64) for f in SYSTEM_FIELDS}
    cols["batch"] = rng.choice([0.0, 1, 2, 4, 8, 16, 32, 64, 128], N)
    cols["prefill_units"] = np.where(cols["prefill_units"] > 0, rng.choice([8.0, 16, 24, 32], N), 0)
    cols["host_gb_per_gpu"] = rng.uniform(0, 400, N)
    cols["spec_k"] = rng.integers(0, 6, N).astype(np.float64)
    designs = system_design(cols)
    cal = st.calibration
    args = (st.tables, cal.efficiency, cal.runtime, st.cost, st.profile)
    t0 = time.perf_counter()
    evaluate_systems(*args, designs)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = evaluate_systems(*args, designs)
    steady = time.perf_counter() - t0
    assert np.isfinite(out.tok_s_user).all()
    print(f"stack model: {N} system designs, first call {first:.1f} s (compile + run), "
          f"steady {N / steady:,.0f} designs/s ({int(out.feasible.sum())} feasible)")  # fmt: skip


if __name__ == "__main__":
    main()
