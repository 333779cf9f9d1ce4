"""The model's measured error for the hardware in a report: error bars and the accuracy table.

Source: ``conf/calibration/errors.csv``, written by ``dse validate --folds 5 -o ...``: one row
per public measurement with the held-out error (``error_pct_cv``: predicted by a fit that never
saw the point). Bars use the median absolute held-out error ("typical error"); the table also
gives the 90th percentile. A metric group with fewer than ``MIN_POINTS`` measured values of the
hardware falls back to all hardware, and the band says so: hardware that has no public
measurement (announced parts like VR200 or Groq 3 LPX) has no measured error at all.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..files import conf_dir

MIN_POINTS = 3
# metric groups: per-user speed (what sets tok/s/user), throughput per GPU, time to first token
GROUPS = {
    "interactivity": ("tpot_ms", "tok_s_user"),
    "throughput": ("tok_s_gpu", "input_tok_s_gpu"),
    "ttft": ("ttft_ms",),
}


@dataclass(frozen=True)
class ErrorBand:
    hardware: str
    interactivity_pct: float  # median |held-out error| of tok/s/user-type metrics
    throughput_pct: float
    ttft_pct: float
    interactivity_p90: float
    throughput_p90: float
    n: int  # measured values (TTFT, TPOT, throughput, ...) of this hardware
    measurements: int  # measured operating points (a point may publish several values)
    basis: str  # where the numbers come from, in words

    @property
    def measured(self) -> bool:
        return self.n > 0


@functools.cache
def heldout_errors() -> pd.DataFrame:
    path = conf_dir() / "calibration" / "errors.csv"
    errors = pd.read_csv(path)
    col = "error_pct_cv" if "error_pct_cv" in errors else "error_pct"
    return errors.assign(abs_err=errors[col].abs(), held_out=col == "error_pct_cv")


def _stat(errors: pd.DataFrame, group: str, q: float) -> tuple[float, int]:
    e = errors[errors["metric"].isin(GROUPS[group])]["abs_err"].dropna()
    return (float(np.quantile(e, q)) if len(e) else float("nan")), len(e)


@functools.cache
def error_band(hardware: str) -> ErrorBand:
    errors = heldout_errors()
    mine = errors[errors["hardware"] == hardware]
    values, fallbacks = {}, []
    for group in GROUPS:
        for q, key in ((0.5, group), (0.9, f"{group}_p90")):
            v, n = _stat(mine, group, q)
            if n < MIN_POINTS:
                v, _ = _stat(errors, group, q)
                if q == 0.5:
                    fallbacks.append(group)
            values[key] = v
    kind = "held-out" if bool(errors["held_out"].iloc[0]) else "in-sample"
    if mine.empty:
        basis = (f"no public measurement of {hardware}: all-hardware {kind} median "
                 f"({len(errors)} values, {errors['id'].nunique()} operating points) shown as a "
                 "floor; the true error is unknown")  # fmt: skip
    else:
        basis = (f"{len(mine)} {kind} values from {mine['id'].nunique()} measured operating "
                 f"points of {hardware}")  # fmt: skip
        if fallbacks:
            basis += f" ({', '.join(fallbacks)}: fewer than {MIN_POINTS} values, all-hardware median used)"
    return ErrorBand(
        hardware, values["interactivity"], values["throughput"], values["ttft"],
        values["interactivity_p90"], values["throughput_p90"], len(mine), int(mine["id"].nunique()),
        basis,
    )  # fmt: skip


def accuracy_table(hardware: list[str]) -> pd.DataFrame:
    rows = []
    for h in hardware:
        b = error_band(h)
        rows.append({
            "hardware": h, "measurements": b.measurements, "values": b.n,
            "tok/s/user median %": round(b.interactivity_pct, 1),
            "tok/s/user p90 %": round(b.interactivity_p90, 1),
            "throughput median %": round(b.throughput_pct, 1),
            "throughput p90 %": round(b.throughput_p90, 1),
            "TTFT median %": round(b.ttft_pct, 1), "basis": b.basis,
        })  # fmt: skip
    return pd.DataFrame(rows)
