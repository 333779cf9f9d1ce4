"""Exhaustive sweeps on a Dask cluster (``search=dask``: a 2-worker ``LocalCluster``) write the
single-process sweep's tables bit for bit, and resume after ``kill -9`` to the same tables."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from dse.search.distributed import cluster_address
from dse.search.exhaustive import Exhaustive
from dse.stack import Stack
from tests.search.test_faults import (
    EXHAUSTIVE,
    _kill_and_resume,
    _reference,
    _run,
    _same_tables,
)
from tests.support import SMALL_STUDY

TABLES = ("frontier.csv", "best.csv", "points.csv", "frontier.parquet", "points.parquet")


def test_a_dask_sweep_writes_the_single_process_tables(tmp_path):
    quiet = ["report.enabled=false", "ui.output=quiet", "ui.progress=none"]
    for name, engine in (("plain", []), ("dask", ["search=dask", "search.chunk=256"])):
        p = _run([*SMALL_STUDY, *quiet, *engine, f"results_dir={tmp_path}", f"run={name}"])
        _, err = p.communicate()
        assert p.returncode == 0, err
        assert "Traceback" not in err
    for table in TABLES:
        plain = (tmp_path / "kv_tier_sizing" / "plain" / table).read_bytes()
        assert (tmp_path / "kv_tier_sizing" / "dask" / table).read_bytes() == plain, table


def test_kill_9_dask_sweep_resumes_to_the_single_process_tables(tmp_path):
    """The reference is the single-process sweep; the run that is killed (SIGKILL to the
    process that merges, while its workers evaluate) and resumed runs on the Dask cluster."""
    run = tmp_path / "kv_tier_sizing"
    window = _reference(EXHAUSTIVE, tmp_path, run / "ref" / "checkpoint.npz")
    dask = [*EXHAUSTIVE, "search=dask"]
    kills = _kill_and_resume(dask, tmp_path, run / "cut" / "checkpoint.npz", window, 3, rounds=1)
    assert kills >= 1, "no kill landed during the sweep"
    _same_tables(tmp_path)


@pytest.mark.parametrize("value", ["lcoal", "8786", "tcp://"])
def test_a_cluster_that_is_neither_local_nor_an_address_is_refused_in_one_line(value):
    with pytest.raises(ValueError, match="search.cluster") as e:
        Exhaustive(chunk=8, keep_points=None, resume=True, checkpoint_every=1, cluster=value,
                   workers=2)  # fmt: skip
    assert "\n" not in str(e.value)
    assert cluster_address(" LOCAL ") == "local"
    assert cluster_address("tcp://10.0.0.1:8786") == "tcp://10.0.0.1:8786"


def test_a_stack_travels_to_another_process_without_its_compiled_programs():
    """What Dask ships to its workers: a pickled Stack evaluates like the original."""
    st = Stack(workload="agentic_coding", sessions=4)
    copy = pickle.loads(pickle.dumps(st))
    assert copy._sweep is not st._sweep and copy._jacobians == {}
    rows = [dict(model="llama3.1-8b", system="gb200_nvl72", software="default", batch=b)
            for b in (1, 16)]  # fmt: skip
    a, b = st.evaluate(rows), copy.evaluate(rows)
    assert np.array_equal(a["tok_s_user"].to_numpy(), b["tok_s_user"].to_numpy())
