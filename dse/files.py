"""Where dse's files are, and atomic file writes.

``conf_dir``: the ``conf/`` tree (``$DSE_CONF`` or the one beside the package), which the
catalog, the calibration and the report's reference material read.

Atomic writes: every output goes to a unique temporary name beside its target and is
renamed over it when complete, so a killed run never leaves half a file and two processes
writing the same run folder (workers sharing a study) never trip over each other's
temporaries; the last complete write wins."""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: Path | str):
    """Yield a temporary path to write; on success it replaces ``path``, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # keep the suffix: writers such as np.savez and matplotlib pick the format from it
    tmp = path.with_name(f".{path.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_text_atomic(text: str, path: Path | str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def conf_dir() -> Path:
    """The ``conf/`` directory: ``$DSE_CONF`` if set, else the one beside the package."""
    env = os.environ.get("DSE_CONF")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1] / "conf"
