"""Studies survive faults: ``kill -9`` at random points, resume; workers sharing one study.

Real processes (``python -m dse.cli search ...``) killed with SIGKILL while they search, then
the same command run again. The resumed run must store exactly the trials an uninterrupted run
stores (same numbers, parameters, values: nothing lost, nothing twice) and write byte-identical
frontier/best tables. In-process, a journal cut at random byte offsets (every place a kill can
land in a write, torn records included) must resume to the same trials. Workers sharing a
journal file (one machine) or a PostgreSQL database (many machines; the server .ci/run starts)
must leave every batch whole and no (batch, position) stored twice.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest

from dse.search.batches import SIZE, trial_key, unique
from dse.search.evaluate import Evaluator
from dse.search.optuna_search import optuna_search
from dse.search.space import Space
from dse.search.storage import make_storage, worker_slot
from dse.stack import Stack
from tests.search.test_study import CON, OBJ, SPACE

DSE = [sys.executable, "-m", "dse.cli", "search"]
# kv_tier_sizing widened to ~82K designs, so a sweep lasts long enough to be killed in the middle.
BASE = ["study=kv_tier_sizing", "sessions=16", "report.enabled=false", "ui.output=quiet",
        "ui.progress=none", "++space.choices.batch=[4,8,16,24,32,48,64,96,128]",
        "++space.choices.prefill_units=[4,8,12,16,24,32]",
        "++space.choices.storage_tb=[0,25,50,100,200,500,1000]",
        "++space.choices.storage_gbs=[0,50,100,200,400,1000]"]  # fmt: skip
EXHAUSTIVE = [*BASE, "search.keep_points=false", "search.checkpoint_every=1"]
OPTUNA = [*BASE, "search=optuna", "search.n_trials=1280", "search.batch=64",
          "search.population=64", "search.seed=5"]  # fmt: skip
ROUNDS = int(os.environ.get("DSE_KILL_ROUNDS", "2"))  # more: benchmarks/fault_campaign.py
TABLES = ("frontier.csv", "best.csv", "frontier.parquet")


def _run(args: list[str], **kw) -> subprocess.Popen:
    return subprocess.Popen([*DSE, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, **kw)  # fmt: skip


def _mark(path: Path):
    """What the search has written so far: a kill is aimed once this changes."""
    return path.stat().st_mtime_ns if path.exists() else None


def _wait_for_progress(p: subprocess.Popen, written: Path) -> None:
    """Until the search writes results: a file that already exists changes, or one that did not
    changes after it appears (an Optuna journal is created before the model compiles, and a
    kill timed from its creation would mostly land in the compile, which a cold JAX cache
    stretches far beyond the search)."""
    before = _mark(written)
    for _ in range(1 if before is not None else 2):
        while p.poll() is None and _mark(written) == before:
            time.sleep(0.01)
        before = _mark(written)


def _reference(args, out: Path, written: Path) -> float:
    """Run uninterrupted; returns how long it spent writing results (first write to exit)."""
    p = _run([*args, f"results_dir={out}", "run=ref"])
    _wait_for_progress(p, written)
    first = time.perf_counter()
    _, err = p.communicate()
    assert p.returncode == 0, err
    return time.perf_counter() - first


def _kill_and_resume(args, out: Path, written: Path, window: float, seed: int,
                     rounds: int = ROUNDS, run: str = "cut") -> int:  # fmt: skip
    """``rounds`` times: start the search, wait until it writes, SIGKILL it at a random moment
    within its share of ``window``; then run it to the end. Returns the kills that landed."""
    rng, kills = random.Random(seed), 0
    for _ in range(rounds):
        p = _run([*args, f"results_dir={out}", f"run={run}"])
        _wait_for_progress(p, written)
        time.sleep(rng.uniform(0.0, window / rounds))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.communicate()
    p = _run([*args, f"results_dir={out}", f"run={run}"])
    _, err = p.communicate()
    assert p.returncode == 0, err
    return kills


def _same_tables(out: Path, run: str = "cut") -> None:
    for name in TABLES:
        ref, cut = out / "kv_tier_sizing" / "ref" / name, out / "kv_tier_sizing" / run / name
        assert cut.read_bytes() == ref.read_bytes(), f"{name} differs after kill -9 and resume"


def _trials(journal: Path) -> list[tuple]:
    (summary,) = optuna.get_all_study_summaries(make_storage(str(journal)))
    study = optuna.load_study(study_name=summary.study_name, storage=make_storage(str(journal)))
    return [(t.number, t.state, trial_key(t), t.params, t.values) for t in study.get_trials()]


def test_kill_9_exhaustive_sweep_resumes_to_identical_tables(tmp_path):
    run = tmp_path / "kv_tier_sizing"
    window = _reference(EXHAUSTIVE, tmp_path, run / "ref" / "checkpoint.npz")
    kills = _kill_and_resume(EXHAUSTIVE, tmp_path, run / "cut" / "checkpoint.npz", window, 1)
    assert kills >= 1, "no kill landed during the sweep"
    _same_tables(tmp_path)


def test_kill_9_optuna_study_resumes_to_identical_trials_and_tables(tmp_path):
    run = tmp_path / "kv_tier_sizing"
    window = _reference(OPTUNA, tmp_path, run / "ref" / "optuna.journal")
    kills = _kill_and_resume(OPTUNA, tmp_path, run / "cut" / "optuna.journal", window, 2)
    assert kills >= 1, "no kill landed during the study"
    want, got = _trials(run / "ref" / "optuna.journal"), _trials(run / "cut" / "optuna.journal")
    assert len(want) == 1280 and got == want  # nothing lost, nothing twice, same order
    _same_tables(tmp_path)


@pytest.fixture(scope="module")
def evaluator():
    stack = Stack(workload="agentic_coding", sessions=16)
    return Evaluator(stack, "llama3.1-70b", Space.from_mapping(SPACE), chunk=256)


@pytest.mark.parametrize("sampler,population", [("nsga2", 100), ("tpe", 64)])
def test_a_journal_cut_at_any_byte_resumes_to_the_same_trials(evaluator, tmp_path, sampler, population):  # fmt: skip
    # population 100 > batch 64: NSGA generations span batches, the hardest case to redo exactly
    kw = dict(n_trials=256, batch=64, population=population, seed=3, study_name="t", sampler=sampler)  # fmt: skip
    ref, study = optuna_search(evaluator, OBJ, CON, storage=str(tmp_path / "ref.journal"), **kw)
    want = [(t.number, t.params, t.values, t.user_attrs) for t in study.get_trials()]
    raw, rng = (tmp_path / "ref.journal").read_bytes(), random.Random(sampler)
    for r in range(4):
        cut = tmp_path / f"cut{r}.journal"
        cut.write_bytes(raw[: rng.randrange(len(raw))])  # torn mid-record, mostly
        res, again = optuna_search(evaluator, OBJ, CON, storage=str(cut), **kw)
        assert [(t.number, t.params, t.values, t.user_attrs) for t in again.get_trials()] == want
        assert res.front_table.equals(ref.front_table)


def test_a_second_process_cannot_take_a_busy_worker_number(tmp_path):
    journal = str(tmp_path / "s.journal")
    with worker_slot(journal, 0), worker_slot(journal, 1):  # distinct numbers: fine
        with pytest.raises(ValueError, match=r"search.worker=0: another process .* own search.worker"):  # fmt: skip
            with worker_slot(journal, 0):
                pass
    with worker_slot(journal, 0):  # released when the holder ends (or dies: flock)
        pass


def _check_shared(trials, workers: int, n_trials: int, killed: tuple[int, ...] = ()) -> None:
    """No (batch, position) twice, every worker contributed, target met, and every batch whole
    but for at most one per killed worker (the rest of that batch died with the process: it
    was never told, so nothing told is lost)."""
    keys = [trial_key(t) for t in trials]
    assert len(keys) == len(set(keys)) == len(unique(trials))
    batches: dict[str, list] = {}
    for t in trials:
        batches.setdefault(trial_key(t)[0], []).append(t)
    torn = [key for key, ts in batches.items() if len(ts) != ts[0].user_attrs[SIZE]]
    for key in torn:
        assert int(key[1:].split("@")[0]) in killed, f"batch {key} is not whole"
    assert len(torn) <= len(killed)
    assert {k.split("@")[0] for k in batches} == {f"w{w}" for w in range(workers)}
    assert n_trials <= len(trials) <= n_trials + (workers - 1) * 64


def _workers(args: list[str], workers: int, stored=None) -> None:
    """Start ``workers`` processes; with ``stored`` (a function: worker 0's trials stored so
    far), worker 0 is killed at a random moment after it has stored some, and restarted."""
    procs = [_run([*args, f"search.worker={w}"]) for w in range(workers)]
    try:
        if stored is not None:
            while procs[0].poll() is None and stored() == 0:
                time.sleep(0.05)
            time.sleep(random.Random(3).uniform(0.0, 2.0))
            assert procs[0].poll() is None, "worker 0 finished before it could be killed"
            procs[0].send_signal(signal.SIGKILL)
            procs[0].communicate()
            procs[0] = _run([*args, "search.worker=0"])
        for p in procs:
            _, err = p.communicate()
            assert p.returncode == 0, err
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()


def test_workers_share_a_journal_without_losing_or_repeating_trials(tmp_path):
    args = [*OPTUNA, "search.n_trials=768", f"results_dir={tmp_path}", "run=shared"]
    _workers(args, 3)
    journal = tmp_path / "kv_tier_sizing" / "shared" / "optuna.journal"
    study = optuna.load_study(
        study_name="kv_tier_sizing/shared", storage=make_storage(str(journal))
    )
    _check_shared(study.get_trials(), 3, 768)
    assert (journal.parent / "frontier.csv").exists()


POSTGRES = os.environ.get("DSE_TEST_POSTGRES_URL")


@pytest.fixture
def postgres():
    """The server's Optuna storage for the test process; its connections closed at the end."""
    assert POSTGRES, "DSE_REQUIRE_POSTGRES is set but DSE_TEST_POSTGRES_URL is not"
    storage = optuna.storages.RDBStorage(POSTGRES)
    yield storage
    storage.remove_session()
    storage.engine.dispose()


def _stored_by(storage, name: str, prefix: str) -> int:
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:  # not created yet
        return 0
    return sum(trial_key(t)[0].startswith(prefix) for t in study.get_trials(deepcopy=False))


@pytest.mark.skipif(not POSTGRES and not os.environ.get("DSE_REQUIRE_POSTGRES"),
                    reason="no PostgreSQL server (set DSE_TEST_POSTGRES_URL=$(.ci/postgres))")  # fmt: skip
def test_workers_share_a_postgresql_study_and_survive_a_kill(tmp_path, postgres):
    name = f"faults-{uuid.uuid4().hex[:8]}"
    args = [*OPTUNA, "search.n_trials=768", f"search.storage={POSTGRES}",
            f"search.study_name={name}", f"results_dir={tmp_path}", "run=pg"]  # fmt: skip
    try:
        _workers(args, 2, stored=lambda: _stored_by(postgres, name, "w0@"))
        study = optuna.load_study(study_name=name, storage=postgres)
        _check_shared(study.get_trials(), 2, 768, killed=(0,))
        # the password never reaches the run folder
        password = POSTGRES.split("//", 1)[1].split("@", 1)[0].split(":", 1)[1]
        for f in (tmp_path / "kv_tier_sizing" / "pg").rglob("*"):
            if f.is_file():
                assert password.encode() not in f.read_bytes(), f
    finally:
        optuna.delete_study(study_name=name, storage=postgres)


def test_a_corrupt_journal_record_names_the_file_line_and_way_out(evaluator, tmp_path):
    """Issue 19 item 15: a damaged record in the middle of a journal was one bare JSON error."""
    kw = dict(n_trials=64, batch=32, population=32, seed=3, study_name="t", sampler="nsga2")
    journal = tmp_path / "s.journal"
    optuna_search(evaluator, OBJ, CON, storage=str(journal), **kw)
    lines = journal.read_text().splitlines(keepends=True)
    bad = len(lines) // 2
    lines[bad - 1] = "{" + lines[bad - 1][2:]  # a record damaged in place, not a torn tail
    journal.write_text("".join(lines))
    with pytest.raises(ValueError) as e:
        optuna_search(evaluator, OBJ, CON, storage=str(journal), **kw)
    msg = str(e.value)
    assert "\n" not in msg
    for w in (str(journal), f"line {bad} is not a journal record", "delete that line",
              "start the study afresh"):  # fmt: skip
        assert w in msg, msg


def test_a_checkpoint_of_another_configuration_or_damaged_is_set_aside_with_a_warning(
    tmp_path, caplog
):
    """Item 15: a damaged checkpoint.npz, or one written under the same run= by another
    configuration, restarted the sweep silently (and one of the same space size would have
    been resumed into another configuration's front)."""
    import logging

    import numpy as np

    from dse.search.checkpoint import load_checkpoint, save_checkpoint
    from dse.search.pareto import Front

    path = tmp_path / "checkpoint.npz"
    front = Front((True, False), np.zeros((1, 2)), np.zeros(1, dtype=np.int64))
    save_checkpoint(path, 7, front, (7, 3), 100, "abc")
    assert load_checkpoint(path, 100, (True, False), "abc")[0] == 7  # the same run resumes
    with caplog.at_level(logging.WARNING, logger="dse.search"):
        assert load_checkpoint(path, 100, (True, False), "other") is None
    assert "another configuration" in caplog.text and "earlier progress is not used" in caplog.text
    assert not path.exists() and path.with_name("checkpoint.npz.stale").exists()
    path.write_bytes(b"PK\x03\x04 not a zip")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dse.search"):
        assert load_checkpoint(path, 100, (True, False), "abc") is None
    assert "cannot be read" in caplog.text
