"""Where an Optuna study lives: a journal file on one machine or a database for many.

Two faults Optuna's stock journal file does not survive on its own, both seen with ``kill -9``:

* **a lock left behind.** Its default lock is a symlink that a killed process never removes;
  the next process waits out a 30 s grace period and then breaks it, possibly from under a
  live writer. :class:`FlockLock` uses ``flock(2)`` instead: the kernel releases it the moment
  its holder dies, and it never has to be broken.
* **a torn last record.** A large ``write(2)`` interrupted by SIGKILL can leave the journal
  ending in half a line. Optuna's reader skips such a tail, but the next append would glue a
  new record onto it and every later read would fail. :class:`JournalFile` cuts the torn tail
  (a record whose writer died; nobody else can be writing it while we hold the lock) before it
  appends.

Database URLs go to Optuna's RDB storage (``postgresql://user:pw@host/db``: many workers on
many machines); errors opening one are one line with the password masked.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path

import optuna
from optuna.storages.journal import JournalFileBackend, JournalStorage

from .secrets import redact

log = logging.getLogger("dse.search")
try:  # flock(2) is POSIX; elsewhere Optuna's own (symlink) lock is used.
    import fcntl
except ImportError:  # pragma: no cover - not on Linux/macOS
    fcntl = None


class FlockLock:
    """An exclusive ``flock`` on ``<journal>.flock``, released by the kernel if we die. (Duck-
    typed to Optuna's journal lock interface, ``acquire``/``release``, whose base class is not
    exported.)"""

    def __init__(self, journal: str) -> None:
        self._path = journal + ".flock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        fd = os.open(self._path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


class JournalFile(JournalFileBackend):
    """Optuna's journal file that repairs a tail torn by a killed writer before appending."""

    def __init__(self, path: str) -> None:
        super().__init__(path, lock_obj=FlockLock(path) if fcntl else None)

    def append_logs(self, logs) -> None:
        with _held(self._lock):
            _cut_torn_tail(self._file_path)
        super().append_logs(logs)


@contextlib.contextmanager
def _held(lock):
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _cut_torn_tail(path: str) -> None:
    """Truncate anything after the last newline (a record whose writer was killed)."""
    with open(path, "r+b") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
        step, end = 1 << 16, size
        while end > 0:
            start = max(0, end - step)
            f.seek(start)
            newline = f.read(end - start).rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            end = start
        else:
            keep = 0
        f.truncate(keep)
        log.warning("%s: dropped %d bytes of a record whose writer was killed", path, size - keep)


def _corrupt_journal(path: str, error: json.JSONDecodeError) -> str:
    """One line naming the journal's first unreadable record and the two ways out."""
    line = "?"
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for n, text in enumerate(f, start=1):
                if text.strip():
                    try:
                        json.loads(text)
                    except json.JSONDecodeError:
                        line = str(n)
                        break
    except OSError:
        pass
    return (
        f"{path}: line {line} is not a journal record ({error.msg}), so the study cannot be "
        f"read past it; delete that line and the ones after it to keep the trials before it, "
        f"or move the file away (or choose another run=) to start the study afresh"
    )


def make_storage(storage: str | None):
    """None: in memory; a database URL as is; otherwise a journal file path."""
    if not storage:
        return None
    if "://" in str(storage):
        return str(storage)
    path = Path(storage)
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFile(str(path)))


def open_study(name: str, storage, directions) -> optuna.Study:
    """The persistent study (created or loaded). It is only ever read and appended to, never
    sampled on, so its sampler does not matter. A storage that cannot be opened (no driver,
    server down, wrong password) is the user's to fix: one line, with the password masked."""
    try:
        return optuna.create_study(study_name=name, storage=make_storage(storage),
                                   directions=directions, load_if_exists=True,
                                   sampler=optuna.samplers.RandomSampler(seed=0))  # fmt: skip
    except json.JSONDecodeError as e:
        raise ValueError(_corrupt_journal(str(storage), e)) from e
    except (ValueError, OSError):
        raise
    except ImportError as e:
        raise ValueError(
            f"search.storage={redact(str(storage))}: the database driver is not installed "
            "(PostgreSQL: pip install 'dse[cluster]', which brings psycopg)"
        ) from e
    except Exception as e:  # SQLAlchemy/driver errors: connection refused, authentication, ...
        first = redact(str(e).strip().splitlines()[0]) if str(e).strip() else type(e).__name__
        raise ValueError(f"search.storage={redact(str(storage))}: cannot open ({first})") from e


@contextlib.contextmanager
def worker_slot(storage: str | None, worker: int):
    """Hold worker ``worker``'s slot on a journal file for the whole search, so that two
    processes given the same ``search.worker`` on one machine are refused (they would sample
    the same batches) instead of silently doubling the work. Databases: the user's to keep
    distinct (documented); a killed worker's slot frees itself (``flock``)."""
    if not storage or "://" in str(storage) or fcntl is None:
        yield
        return
    path = f"{storage}.worker{worker}.flock"
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(
                f"search.worker={worker}: another process is already worker {worker} of "
                f"{storage}; give each concurrent worker its own search.worker (0, 1, 2, ...)"
            ) from None
        yield
    finally:
        os.close(fd)


__all__ = ["FlockLock", "JournalFile", "make_storage", "open_study", "worker_slot"]
