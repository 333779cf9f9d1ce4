"""Progress of long work (model compilation, sweep chunks, Optuna batches): bars, log lines or
nothing, behind one small interface that the search loops call.

``make_progress(mode)`` picks the display: ``bars`` (:class:`RichProgress`: rich bars with rate,
elapsed and ETA), ``log`` (:class:`LogProgress`: throttled ``logging`` lines, for files and CI),
``none`` (:class:`Progress` itself: every call a no-op, for scripts and ``--json``), or ``auto``
(bars on an interactive terminal, log lines otherwise)::

    progress = make_progress("auto")
    with progress.task("sweep 22260 designs", total=22260) as task:
        with progress.phase("compiling the system model"):
            first = evaluate(chunk)          # spinner, then its elapsed seconds
        task.advance(len(chunk))
    progress.close()

Bars go to **stderr**: stdout carries the results (tables, ``--json`` documents) and stays
parseable when piped while the bars are shown. While bars show on a terminal, log lines bound
for that terminal print above them instead of tearing them. Display code never raises into the
work: a failing terminal or handler costs the display, not the run. Calls are cheap (a clock
read and a comparison per ``advance`` when throttled), so loops may call them per chunk.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator

MODES = ("auto", "bars", "log", "none")
log = logging.getLogger("dse.progress")


def _safe(fn):
    """Display code must never break the work it reports on: swallow and note its errors."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception:  # noqa: BLE001 (KeyboardInterrupt still propagates)
            logging.getLogger("dse.progress.errors").debug("progress display failed", exc_info=True)
            return None

    return wrapper


class ProgressTask:
    """One counted piece of work; the base does nothing (``none`` mode)."""

    def advance(self, n: int = 1) -> None:
        """``n`` more units done."""

    def update(self, completed: int) -> None:
        """``completed`` units done in all."""

    def close(self) -> None:
        """The work is over (finished or not): final display; later calls are ignored."""

    def __enter__(self) -> ProgressTask:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_NULL_TASK = ProgressTask()


class Progress:
    """The interface, and the silent implementation of it (``make_progress("none")``)."""

    def task(self, description: str, total: int | None, unit: str = "points",
             completed: int = 0) -> ProgressTask:  # fmt: skip
        """A counted task of ``total`` units (None: unknown) starting at ``completed`` (a
        resumed run); use as a context manager or ``close()`` it."""
        return _NULL_TASK

    @contextlib.contextmanager
    def phase(self, description: str) -> Iterator[None]:
        """A step of unknown length (spinner, then its elapsed seconds at exit)."""
        yield

    def close(self) -> None:
        """End the display (idempotent)."""

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- log lines ------------------------------------------------------------------------------------
def _si(x: float) -> str:
    """97600 -> '97.6K'; 312 -> '312'; 1.5 -> '1.5'."""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(x) >= div:
            return f"{x / div:.1f}{suffix}"
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}"


def _secs(s: float) -> str:
    """0.3 s, 42.0 s, 3:05, 1:02:03."""
    if s < 60:
        return f"{s:.1f} s"
    m, s = divmod(int(round(s)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class _LogTask(ProgressTask):
    def __init__(self, owner: LogProgress, description: str, total, unit: str, completed: int):
        self.o, self.description, self.unit = owner, description, unit
        self.total = None if total is None else int(total)
        self.completed = self.initial = int(completed)
        self.start = self.last = owner.clock()
        self.first: tuple[float, int] | None = None  # (time, completed) of the first update
        self.closed = False

    @_safe
    def advance(self, n: int = 1) -> None:
        self.update(self.completed + int(n))

    @_safe
    def update(self, completed: int) -> None:
        if self.closed:
            return
        now, self.completed = self.o.clock(), int(completed)
        if self.first is None:
            self.first = (now, self.completed)
        if self.total is not None and self.completed >= self.total:
            self._final(now)
        elif now - self.last >= self.o.interval:
            self.last = now
            log.info("%s", self._line(now))

    @_safe
    def close(self) -> None:
        if not self.closed:
            self._final(self.o.clock())

    def _rate(self, now: float, final: bool) -> float | None:
        """Units/s since the first update (the first chunk pays for compilation); for a final
        line with a single update, the average since the start."""
        if self.first is not None and now > self.first[0] and self.completed > self.first[1]:
            return (self.completed - self.first[1]) / (now - self.first[0])
        if final and now > self.start and self.completed > self.initial:
            return (self.completed - self.initial) / (now - self.start)
        return None

    def _line(self, now: float, final: bool = False) -> str:
        done, total, unit = self.completed, self.total, self.unit
        count = f"{done}/{total} {unit} ({100 * done / max(total, 1):.1f} %)" if total is not None \
            else f"{done} {unit}"  # fmt: skip
        rate = self._rate(now, final)
        parts = [count] + ([f"{_si(rate)} {unit}/s"] if rate else [])
        if final:
            finished = total is None or done >= total
            parts.append(("done in " if finished else "stopped after ") + _secs(now - self.start))
        elif rate and total is not None:
            parts.append(f"ETA {_secs(max(total - done, 0) / rate)}")
        return f"{self.description}: " + ", ".join(parts)

    def _final(self, now: float) -> None:
        self.closed = True
        log.info("%s", self._line(now, final=True))


class LogProgress(Progress):
    """Plain ``logging`` lines on ``dse.progress`` at INFO: per task at most one line every
    ``interval`` seconds, and a final line (``sweep: 8192/22260 points (36.8 %), 41.2K
    points/s, ETA 0.3 s``). For logs, CI and any non-terminal stderr."""

    def __init__(self, interval: float = 2.0, clock: Callable[[], float] = time.monotonic):
        self.interval, self.clock = float(interval), clock

    def task(self, description: str, total: int | None, unit: str = "points",
             completed: int = 0) -> ProgressTask:  # fmt: skip
        try:
            return _LogTask(self, description, total, unit, completed)
        except Exception:  # noqa: BLE001
            return _NULL_TASK

    @contextlib.contextmanager
    def phase(self, description: str) -> Iterator[None]:
        t0 = _safe(self.clock)()
        _safe(log.info)("%s ...", description)
        ok = False
        try:
            yield
            ok = True
        finally:
            _safe(self._end_phase)(description, ok, t0)

    def _end_phase(self, description: str, ok: bool, t0: float) -> None:
        took = _secs(max(self.clock() - t0, 0.0))
        log.info("%s: %s %s", description, "done in" if ok else "failed after", took)


# -- rich bars ------------------------------------------------------------------------------------
def _rich_bars(console, refresh_per_second: float):
    """A rich Progress drawing counted tasks as one table (spinner, description, bar, M/N, rate,
    elapsed, ETA) and phases as another (spinner, description, elapsed), so a long phase text
    does not squeeze the bars; columns fit 80-column terminals (the bar gives way first)."""
    import rich.progress as rp
    from rich.table import Column, Table
    from rich.text import Text

    fixed = dict(no_wrap=True)
    width = int(getattr(console, "width", 80) or 80)

    class Description(rp.ProgressColumn):
        def render(self, task):
            return Text(task.description, no_wrap=True, overflow="ellipsis")

    class Count(rp.ProgressColumn):  # M/N, or M for an unknown total
        def render(self, task):
            c = int(task.completed)
            return Text(f"{c}" if task.total is None else f"{c}/{int(task.total)}",
                        style="progress.download")  # fmt: skip

    class Rate(rp.ProgressColumn):  # 97.6K points/s
        def render(self, task):
            speed = task.finished_speed or task.speed
            if not speed and task.finished and task.finished_time:  # one update: the average
                speed = (task.completed - task.fields.get("initial", 0)) / task.finished_time
            if not speed:
                return Text("")
            return Text(f"{_si(speed)} {task.fields.get('unit', '')}/s",
                        style="progress.data.speed")  # fmt: skip

    class Eta(rp.ProgressColumn):  # ETA 0:03 while counting towards a known total
        def render(self, task):
            if task.total is None or task.finished:
                return Text("")
            left = task.time_remaining
            eta = "-:--" if left is None else _secs(left)
            return Text(f"ETA {eta}", style="progress.remaining")

    class PhaseTime(rp.ProgressColumn):  # seconds so far; at the end "done in 7.0 s"
        def render(self, task):
            if task.finished:
                return Text(task.fields.get("outcome", ""), style="progress.elapsed")
            return Text(_secs(task.elapsed or 0.0), style="progress.elapsed")

    def spinner():
        return rp.SpinnerColumn(finished_text="[green]✓", table_column=Column(**fixed))

    # a long phase text gives way (ellipsis) before its time does
    phase_columns = (spinner(), Description(), PhaseTime(table_column=Column(**fixed)))

    class Bars(rp.Progress):
        def get_renderables(self):
            counted = [t for t in self.tasks if not t.fields.get("phase")]
            phases = [t for t in self.tasks if t.fields.get("phase")]
            if phases:  # first: in the record, compilation reads before the sweep it began
                table = Table.grid(*(c.get_table_column().copy() for c in phase_columns),
                                   padding=(0, 1))  # fmt: skip
                for t in phases:
                    table.add_row(*(c(t) for c in phase_columns))
                yield table
            if counted:
                yield self.make_tasks_table(counted)

    columns = (
        spinner(),
        # M/N, rate, elapsed and ETA take ~50 columns: the description gets what is left
        Description(table_column=Column(no_wrap=True, max_width=max(16, min(48, width - 50)))),
        rp.BarColumn(bar_width=None, table_column=Column(max_width=30)),
        Count(table_column=Column(**fixed)), Rate(table_column=Column(**fixed)),
        rp.TimeElapsedColumn(table_column=Column(**fixed)), Eta(table_column=Column(**fixed)),
    )  # fmt: skip
    # stdout goes through the bars' console (printed above them) only when it is the terminal
    # too; piped, it stays the results' channel untouched.
    return Bars(*columns, console=console, transient=False, redirect_stdout=_isatty(sys.stdout),
                refresh_per_second=refresh_per_second)  # fmt: skip


class _AboveBars(io.TextIOBase):
    """A terminal stream whose whole lines print through the bars' console, above the bars
    (as ``rich.file_proxy.FileProxy``, but long lines wrap as the terminal wraps them)."""

    def __init__(self, console, stream):
        self.console, self.stream, self.pending = console, stream, ""

    def write(self, text: str) -> int:
        *lines, self.pending = (self.pending + text).split("\n")
        if lines:
            self.console.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True,
                               emoji=False)  # fmt: skip
        return len(text)

    def flush(self) -> None:
        if self.pending:
            text, self.pending = self.pending, ""
            self.console.print(text, markup=False, highlight=False, soft_wrap=True, emoji=False)

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.stream.fileno()


class _RichTask(ProgressTask):
    def __init__(self, owner: RichProgress, bars, tid):
        self.o, self.bars, self.id, self.closed = owner, bars, tid, False

    @_safe
    def advance(self, n: int = 1) -> None:
        if not self.closed:
            self.bars.advance(self.id, n)

    @_safe
    def update(self, completed: int) -> None:
        if not self.closed:
            self.bars.update(self.id, completed=completed)

    @_safe
    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        bars = self.bars
        task = next((t for t in bars.tasks if t.id == self.id), None)
        if task is not None and task.total is None:  # unknown total: what was done is the total
            speed = task.speed  # (a new total resets rich's speed samples)
            bars.update(self.id, total=task.completed)
            task.finished_speed = speed
        bars.stop_task(self.id)
        self.o._release(bars)


class RichProgress(Progress):
    """rich bars on stderr (spinner, description, bar, M/N, rate, elapsed, ETA). Finished tasks
    stay on screen as a record (``transient=False``); the live display starts with the first
    open task or phase and stops when none is left open (the next one starts a fresh display
    below), so a forgotten ``close()`` leaves the terminal clean. ``console``: any
    ``rich.console.Console`` (tests pass one on a StringIO)."""

    def __init__(self, console=None, refresh_per_second: float = 10):
        from rich.console import Console

        self.console = console if console is not None else Console(stderr=True)
        self.refresh_per_second = refresh_per_second
        self.bars = None  # the rich Progress of the live display now shown, if any
        self._open, self._lock, self._broken = 0, threading.Lock(), False
        self._rerouted: list[tuple[logging.Handler, object]] = []

    def _acquire(self):
        """The live display (started if none is), with one more open task or phase on it."""
        with self._lock:
            if self.bars is None:
                # A fresh rich Progress per display: a restarted one would first erase the
                # lines it drew last time, which are the record of finished work.
                self.bars = _rich_bars(self.console, self.refresh_per_second)
                self.bars.start()
                self._reroute_logging()
            self._open += 1
            return self.bars

    def _reroute_logging(self) -> None:
        """Log lines bound for the terminal (Hydra's console handler writes to stdout) would
        tear the live bars: while they show, such handlers print through the bars' console,
        above the bars. Handlers on files or pipes are left alone."""
        if not self.console.is_terminal:
            return
        for h in logging.getLogger().handlers:
            stream = getattr(h, "stream", None)
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler) \
                    and not isinstance(stream, _AboveBars) and _isatty(stream):  # fmt: skip
                h.setStream(_AboveBars(self.console, stream))
                self._rerouted.append((h, stream))

    def _release(self, bars) -> None:
        with self._lock:
            if bars is not self.bars:  # its display was closed already
                return
            self._open = max(self._open - 1, 0)
            if self._open == 0:
                self._stop()

    def _stop(self) -> None:
        while self._rerouted:
            handler, stream = self._rerouted.pop()
            _safe(handler.setStream)(stream)  # (flushes what the proxy still holds)
        bars, self.bars, self._open = self.bars, None, 0
        if bars is not None:
            bars.stop()  # the final frame stays on screen

    def task(self, description: str, total: int | None, unit: str = "points",
             completed: int = 0) -> ProgressTask:  # fmt: skip
        if self._broken:
            return _NULL_TASK
        try:
            bars = self._acquire()
            tid = bars.add_task(description, total=total, completed=completed, unit=unit,
                                initial=completed)  # fmt: skip
            return _RichTask(self, bars, tid)
        except Exception:  # noqa: BLE001
            self._give_up()
            return _NULL_TASK

    def _give_up(self) -> None:
        """The console failed: no more display for this object (the work goes on)."""
        self._broken = True
        self.close()

    @contextlib.contextmanager
    def phase(self, description: str) -> Iterator[None]:
        bars = tid = None
        if not self._broken:
            try:
                bars = self._acquire()
                tid = bars.add_task(description, total=None, phase=True)
            except Exception:  # noqa: BLE001
                self._give_up()
        t0, ok = time.monotonic(), False
        try:
            yield
            ok = True
        finally:
            if tid is not None:
                _safe(self._end_phase)(bars, tid, ok, time.monotonic() - t0)

    def _end_phase(self, bars, tid, ok: bool, took: float) -> None:
        outcome = f"{'done in' if ok else 'failed after'} {_secs(took)}"
        bars.update(tid, total=1, completed=1, outcome=outcome)
        bars.stop_task(tid)
        self._release(bars)

    @_safe
    def close(self) -> None:
        with self._lock:
            self._stop()


def _isatty(stream) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except Exception:  # noqa: BLE001 (closed or replaced stream)
        return False


def _stderr_is_terminal() -> bool:
    return _isatty(sys.stderr) and os.environ.get("TERM") != "dumb"


def make_progress(mode: str = "auto") -> Progress:
    """The display for ``ui.progress``: ``auto`` (bars on an interactive stderr whose TERM is not
    ``dumb``, else log lines), ``bars``, ``log`` or ``none``."""
    m = str(mode).strip().lower()
    if m not in MODES:
        raise ValueError(f"ui.progress={mode!r}: not one of {', '.join(MODES)}")
    if m == "auto":
        m = "bars" if _stderr_is_terminal() else "log"
    return RichProgress() if m == "bars" else LogProgress() if m == "log" else Progress()


__all__ = ["MODES", "LogProgress", "Progress", "ProgressTask", "RichProgress", "make_progress"]
