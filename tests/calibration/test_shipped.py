"""The shipped calibration (conf/calibration/default.yaml) against the evidence it rests on.

* Kernel level: every fitted value inside the range public microbenchmarks show (a value
  outside is a phenomenon the model misses, not a result); the shipped values are what
  `dse calibrate`'s kernel fit gives on the shipped tables; each kernel family is predicted
  within a stated error.
* Serving level: the held-out (5-fold cross-validated) errors in conf/calibration/errors.csv
  stay under bounds per phase, and that file describes the current model (its in-sample
  predictions are re-computed here), so a model change cannot leave stale error bars behind.
* Framework costs outside their evidence are listed in the provenance, and the known misses
  are strict expected failures that flip when fixed.
"""

import numpy as np
import pandas as pd
import pytest

from dse.calibration import Calibration
from dse.calibration.data import METRICS, default_measurements_path, load_measurements
from dse.calibration.kernels import evidenced, fit_kernels, load_kernel_rows, residuals
from dse.catalog import GENERATIONS, conf_dir
from dse.model.batched import evaluate_many
from dse.model.efficiency import EVIDENCE, FRAMEWORK_EVIDENCE, FRAMEWORKS, KERNEL_FIELDS

CAL_DIR = conf_dir() / "calibration"


@pytest.fixture(scope="module")
def shipped():
    return Calibration.load()


@pytest.fixture(scope="module")
def kernel_fit(catalog):
    rows = load_kernel_rows(catalog)
    eff, _, gens = fit_kernels(rows)
    return rows, eff, gens


def test_every_used_microbenchmark_row_has_a_source(catalog):
    rows = load_kernel_rows(catalog)
    assert len(rows.measured) > 150
    assert (rows.frame["source"].str.len() > 5).all()


def test_kernel_level_values_sit_inside_the_public_evidence(shipped, kernel_fit):
    """Values the microbenchmarks pin down sit inside their range; values the serving level
    refined (no microbenchmark for that generation) are declared in the provenance if not."""
    rows, _, gens = kernel_fit
    ev = evidenced(rows)
    declared = "\n".join(shipped.provenance.get("outside_evidence", []))
    outside = []
    for f in KERNEL_FIELDS:
        lo, hi, _ = EVIDENCE[f]
        for i, g in enumerate(GENERATIONS):
            v = float(getattr(shipped.efficiency, f)[i])
            if g in gens and not lo <= v <= hi:
                if f in ev[g] or f"{f} ({g})" not in declared:
                    outside.append(f"{f} ({g}) = {v:.4g} outside {lo:g}-{hi:g}")
    assert not outside, outside


def test_shipped_kernel_level_is_what_the_kernel_fit_gives(shipped, kernel_fit):
    """Reproducible: `dse calibrate` on the shipped tables gives the shipped kernel values
    (except fields a generation's microbenchmarks leave open, refined by the serving level)."""
    rows, eff, gens = kernel_fit
    ev = evidenced(rows)
    for f in KERNEL_FIELDS:
        for i, g in enumerate(GENERATIONS):
            if g in gens and f in ev[g]:
                assert float(getattr(shipped.efficiency, f)[i]) == pytest.approx(
                    float(getattr(eff, f)[i]), rel=2e-3
                ), (f, g)


@pytest.mark.parametrize(
    "family, bound_pct",
    [("gemm", 15.0), ("attention", 12.0), ("memory", 10.0), ("allreduce", 30.0),
     ("p2p", 10.0), ("alltoall", 10.0), ("launch", 10.0)],
)  # fmt: skip
def test_kernel_families_are_predicted_within_bounds(kernel_fit, family, bound_pct):
    rows, eff, _ = kernel_fit
    r = residuals(eff, rows)
    err = r.loc[r["family"] == family, "error_pct"].abs()
    assert len(err) > 0
    assert float(np.median(err)) <= bound_pct, (family, float(np.median(err)))


def test_calibration_outputs_beside_it_are_written():
    ev = pd.read_csv(CAL_DIR / "evidence.csv")
    assert {"field", "generation", "value", "low", "high", "inside", "evidence"} <= set(ev.columns)
    kernel = ev[(ev["level"] == "kernel") & ~ev["generation"].str.startswith("framework:")]
    assert len(kernel) > 20 and kernel["inside"].all()
    assert (pd.read_csv(CAL_DIR / "kernel_residuals.csv")["source"].str.len() > 5).all()


def test_framework_costs_outside_their_evidence_are_declared(shipped):
    """Every serving-level framework value outside its public range is listed in the file's
    provenance (nothing outside the evidence is silent)."""
    declared = "\n".join(shipped.provenance.get("outside_evidence", []))
    assert sum(shipped.fitted.get(f"framework:{n}", False) for n in FRAMEWORKS) == 3
    for i, n in enumerate(FRAMEWORKS):
        if not shipped.fitted.get(f"framework:{n}", False):
            continue
        for f, (lo, hi, _) in FRAMEWORK_EVIDENCE.items():
            v = float(getattr(shipped.runtime, f"fw_{f}")[i])
            if not lo <= v <= hi:
                assert f"{f} (framework:{n})" in declared, (f, n, v)


@pytest.fixture(scope="module")
def errors_file():
    return pd.read_csv(CAL_DIR / "errors.csv")


def test_errors_file_describes_the_current_model(shipped, catalog, errors_file):
    """errors.csv's in-sample predictions equal the model's today (regenerate it with
    `dse validate --folds 5 -o conf/calibration/errors.csv` after a model change)."""
    data = load_measurements(default_measurements_path(), catalog)
    m = evaluate_many(data.archs, data.hws, shipped.efficiency, shipped.runtime,
                      data.model_idx, data.hw_idx, data.designs)  # fmt: skip
    pred = np.stack([np.asarray(getattr(m, k)) for k in METRICS], axis=1)
    ids = list(data.frame["id"])
    checked = 0
    for r in errors_file.itertuples():
        if r.id in ids and np.isfinite(r.predicted):
            now = pred[ids.index(r.id), METRICS.index(r.metric)]
            assert now == pytest.approx(r.predicted, rel=5e-3), (r.id, r.metric)
            checked += 1
    assert checked > 100


@pytest.mark.parametrize(
    "by, group, bound_median",
    [("phase", "serve:throughput", 20.0), ("phase", "serve:tpot_ms", 12.0),
     ("phase", "serve:ttft_ms", 47.0), ("band", "1", 20.0), ("band", "2-16", 12.0)],
)  # fmt: skip
def test_held_out_errors_stay_bounded(errors_file, by, group, bound_median):
    """Held-out (cross-validated) median |error| per phase and per small-batch band stays
    under a bound that a 1.5x regression would break (today's figures: validation.md)."""
    from dse.calibration.validate import phase_group

    e = errors_file.dropna(subset=["error_pct_cv"])
    e = e[(phase_group(e) if by == "phase" else e["batch_band"]) == group]
    assert len(e) >= 4
    assert float(e["error_pct_cv"].abs().median()) <= bound_median, group
