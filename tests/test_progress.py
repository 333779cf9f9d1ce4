"""Progress displays: throttled log lines, silence, bars on stderr, and the search loops' calls."""

import contextlib
import io
import logging
import re

import numpy as np
import pytest
from rich.console import Console

from dse.progress import LogProgress, Progress, ProgressTask, RichProgress, make_progress
from dse.search.evaluate import COMPILE_PHASE, Evaluator
from dse.search.exhaustive import Objective, exhaustive_search
from dse.search.optuna_search import optuna_search
from dse.search.space import Space
from dse.stack import Stack

# The stack, space and chunk of tests/search/test_exhaustive.py: the model compiled there
# (or in JAX's persistent cache) serves these tests too.
SPACE = {
    "system": ["vr200_nvl72", "gb200_nvl72"],
    "software": ["default", "nvfp4_mtp"],
    "batch": [1, 4, 16, 64],
    "prefill_units": [8, 16, 32],
}
CHUNK = 20
OBJ = (Objective("tok_s_user", True), Objective("tok_s_per_unit", True))


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "dse.progress"]


def test_log_progress_throttles_lines_with_rate_and_eta_and_ends_with_a_final_line(caplog):
    caplog.set_level(logging.INFO, logger="dse.progress")
    clock = Clock()
    progress = LogProgress(interval=2.0, clock=clock)
    with progress.task("sweep", total=1000) as task:
        for t in (0.5, 1.0, 1.5, 2.5, 3.0, 3.5, 4.0, 4.9):  # 100 points every step
            clock.t = t
            task.advance(100)
        assert _lines(caplog) == [
            # first line after 2 s; the rate counts from the first update (compilation excluded)
            "sweep: 400/1000 points (40.0 %), 150 points/s, ETA 4.0 s",
            "sweep: 800/1000 points (80.0 %), 159 points/s, ETA 1.3 s",
        ]
        clock.t = 5.5
        task.update(1000)  # done: the final line, whatever the throttle
    clock.t = 9.0
    task.close()  # closing again (and the with block's exit) adds nothing
    task.advance(5)
    assert _lines(caplog)[2:] == ["sweep: 1000/1000 points (100.0 %), 180 points/s, done in 5.5 s"]


def test_log_progress_unknown_totals_interruptions_and_phases(caplog):
    caplog.set_level(logging.INFO, logger="dse.progress")
    clock = Clock()
    progress = LogProgress(interval=2.0, clock=clock)
    with progress.task("optuna tpe", total=None, unit="trials") as task:
        clock.t = 1.0
        task.advance(256)
        clock.t = 3.0
        task.advance(256)
    with pytest.raises(KeyboardInterrupt), progress.task("sweep", total=100, completed=40) as task:
        clock.t = 4.0
        task.advance(10)
        raise KeyboardInterrupt
    with progress.phase("compiling"):
        clock.t = 28.3
    with pytest.raises(RuntimeError), progress.phase("solving"):
        clock.t = 30.0
        raise RuntimeError("boom")
    assert _lines(caplog) == [
        "optuna tpe: 512 trials, 128 trials/s",
        "optuna tpe: 512 trials, 128 trials/s, done in 3.0 s",
        "sweep: 50/100 points (50.0 %), 10 points/s, stopped after 1.0 s",  # resumed at 40
        "compiling ...",
        "compiling: done in 24.3 s",
        "solving ...",
        "solving: failed after 1.7 s",
    ]


def test_display_errors_never_reach_the_work(caplog):
    def broken_clock():
        raise OSError("no clock")

    class BrokenFile(io.StringIO):
        def write(self, s):
            raise OSError("terminal gone")

    broken_bars = RichProgress(console=Console(file=BrokenFile(), force_terminal=True))
    for progress in (LogProgress(clock=broken_clock), broken_bars):
        with progress.task("sweep", total=10) as task, progress.phase("compiling"):
            task.advance(3)
            task.update(10)
        progress.close()


def test_none_mode_is_silent(capsys, caplog):
    caplog.set_level(logging.DEBUG)
    progress = make_progress("none")
    assert type(progress) is Progress
    with progress, progress.task("sweep", total=10) as task:
        with progress.phase("compiling"):
            task.advance(5)
        task.update(10)
        assert isinstance(task, ProgressTask)
    out, err = capsys.readouterr()
    assert (out, err, caplog.records) == ("", "", [])


def test_rich_progress_draws_on_its_console_never_on_stdout(capsys):
    assert RichProgress().console.stderr  # the default console is stderr
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=140, color_system=None)
    progress = RichProgress(console=console)
    with progress.task("sweep 48 designs", total=48) as task:
        with progress.phase("compiling the system model"):
            pass
        for n in (20, 20, 8):
            task.advance(n)
    with progress.task("optuna random", total=None, unit="trials") as task:
        task.advance(16)
    progress.close()
    out = capsys.readouterr().out
    assert out == ""
    text = buf.getvalue()
    for want in ("sweep 48 designs", "48/48", "points/s", "compiling the system model done in",
                 "optuna random", "16/16", "trials/s"):  # fmt: skip
        assert want in text, want


def _screen(raw: str) -> list[str]:
    """What a terminal shows after ``raw``: enough of VT100 for rich's live display (carriage
    return, newline, cursor up, erase line; colours and other sequences dropped)."""
    rows, row, col = [""], 0, 0
    for tok in re.split(r"(\x1b\[[0-9;?]*[A-Za-z]|\r|\n)", raw):
        rows += [""] * (row + 1 - len(rows))
        if tok == "\n":
            row, col = row + 1, 0
        elif tok == "\r":
            col = 0
        elif tok.startswith("\x1b["):
            if tok.endswith("A"):
                row = max(0, row - int(tok[2:-1] or 1))
            elif tok == "\x1b[2K":
                rows[row] = ""
        elif tok:
            line = rows[row].ljust(col)
            rows[row], col = line[:col] + tok + line[col + len(tok):], col + len(tok)
    return [r.rstrip() for r in rows if r.strip()]


def test_finished_work_stays_on_screen_as_a_record():
    buf = io.StringIO()
    progress = RichProgress(console=Console(file=buf, force_terminal=True, width=100))
    with progress.task("sweep 48 designs", total=48) as task:
        with progress.phase("compiling"):
            pass
        task.advance(48)
    with progress.phase("report"):  # a later display starts below, erasing nothing
        pass
    with progress.task("optuna", total=4, unit="trials") as task:
        task.advance(4)
    screen = _screen(buf.getvalue())
    assert [line.split()[:2] for line in screen] == [
        ["✓", "compiling"], ["✓", "sweep"], ["✓", "report"], ["✓", "optuna"]
    ]
    assert "48/48" in screen[1] and "done in" in screen[2] and "trials/s" in screen[3]


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_log_lines_bound_for_the_terminal_print_above_the_bars_while_they_show():
    terminal, buf = Terminal(), io.StringIO()
    handler = logging.StreamHandler(terminal)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        progress = RichProgress(console=Console(file=buf, force_terminal=True, width=100))
        with progress.task("sweep", total=2) as task:
            logging.getLogger("dse.test").warning("a log line during the sweep")
            task.advance(2)
        assert handler.stream is terminal  # given back when the bars stop
        logging.getLogger("dse.test").warning("after the bars")
    finally:
        root.removeHandler(handler)
    assert "a log line during the sweep" in buf.getvalue()
    assert terminal.getvalue() == "after the bars\n"


@pytest.mark.parametrize("tty, term, want", [(False, "xterm", LogProgress),
                                             (True, "dumb", LogProgress),
                                             (True, "xterm-256color", RichProgress)])  # fmt: skip
def test_auto_mode_draws_bars_only_on_an_interactive_terminal(monkeypatch, tty, term, want):
    class Stream(io.StringIO):
        def isatty(self):
            return tty

    monkeypatch.setattr("sys.stderr", Stream())
    monkeypatch.setenv("TERM", term)
    assert type(make_progress("auto")) is want
    assert type(make_progress()) is want
    assert type(make_progress("bars")) is RichProgress
    assert type(make_progress("log")) is LogProgress


def test_unknown_mode_says_which_are_known():
    with pytest.raises(ValueError, match=r"ui.progress='fancy': not one of auto, bars, log, none"):
        make_progress("fancy")


# -- the search loops ------------------------------------------------------------------------------
class Recording(Progress):
    """Every call the loops make, for assertions."""

    def __init__(self):
        self.tasks, self.phases = [], []

    def task(self, description, total, unit="points", completed=0):
        self.tasks.append(Recorded(description, total, unit, completed))
        return self.tasks[-1]

    @contextlib.contextmanager
    def phase(self, description):
        self.phases.append(description)
        yield


class Recorded(ProgressTask):
    def __init__(self, description, total, unit, completed):
        self.description, self.total, self.unit, self.start = description, total, unit, completed
        self.steps, self.closed = [], False

    def advance(self, n=1):
        self.steps.append(n)

    def close(self):
        self.closed = True


@pytest.fixture(scope="module")
def evaluator():
    stack = Stack(workload="agentic_coding", sessions=32)
    return Evaluator(stack, "llama3.1-70b", Space.from_mapping(SPACE), chunk=CHUNK)


def test_exhaustive_search_advances_over_the_space_and_shows_compilation_once(evaluator):
    space = evaluator.space
    rec = Recording()
    fresh = Evaluator(evaluator.stack, evaluator.model, space, chunk=CHUNK)
    result = exhaustive_search(fresh.stack, fresh.model, space, OBJ, evaluator=fresh, progress=rec)
    (task,) = rec.tasks
    assert (task.description, task.total, task.unit, task.start) == ("sweep 48 designs", 48,
                                                                     "points", 0)  # fmt: skip
    assert task.steps == [20, 20, 8] and sum(task.steps) == space.size == result.evaluated
    assert task.closed and rec.phases == [COMPILE_PHASE]  # the first chunk compiles
    # resumed at point 20: the task starts there; the evaluator is warm, so no phase
    rec = Recording()
    exhaustive_search(fresh.stack, fresh.model, space, OBJ, start=20, evaluator=fresh, progress=rec)
    assert (rec.tasks[0].start, rec.tasks[0].steps, rec.phases) == (20, [20, 8], [])


def test_optuna_search_counts_resumed_trials_and_still_calls_a_plain_callback(evaluator, tmp_path):
    kw = dict(batch=8, sampler="random", seed=1, storage=str(tmp_path / "s.journal"),
              study_name="t")  # fmt: skip
    rec = Recording()
    first, _ = optuna_search(evaluator, OBJ, n_trials=16, progress=rec, **kw)
    (task,) = rec.tasks
    assert (task.description, task.total, task.unit, task.start) == ("optuna random", 16,
                                                                     "trials", 0)  # fmt: skip
    assert task.steps == [8, 8] and task.closed and first.evaluated == 16
    rec = Recording()
    optuna_search(evaluator, OBJ, n_trials=24, progress=rec, **kw)  # resumes: 16 already told
    assert (rec.tasks[0].start, rec.tasks[0].steps) == (16, [8])
    calls = []  # the former progress=lambda done, n: ... callback keeps working
    optuna_search(evaluator, OBJ, n_trials=32, progress=lambda d, n: calls.append((d, n)), **kw)
    assert calls == [(32, 32)]
    assert np.isfinite(first.front.values).all()
