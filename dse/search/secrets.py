"""Passwords in storage URLs never reach a file or the terminal.

``postgresql://user:secret@host/db`` is written and printed as ``postgresql://user:***@host/db``:
in ``config.yaml``, in Hydra's own ``.hydra/*.yaml`` copies of the command line, in error
messages and logs. Pass the real URL on the command line or, better, through an environment
variable (``search.storage='${oc.env:DSE_OPTUNA_STORAGE}'``).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..files import write_text_atomic

# scheme://user:password@host  ->  scheme://user:***@host (the user name stays: it is useful)
_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s'\"]*:)(?P<pw>[^@\s'\"]+)(?=@)")


def redact(text: str) -> str:
    return _PASSWORD.sub(lambda m: m.group("head") + "***", text)


def redact_tree(value):
    """A config (dicts, lists, strings) with every URL password masked."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_tree(v) for v in value)
    return value


def redact_files(folder: Path, pattern: str = "*.yaml") -> None:
    """Mask passwords in files Hydra wrote before dse ran (``.hydra/config.yaml`` etc.)."""
    for path in Path(folder).glob(pattern):
        text = path.read_text()
        clean = redact(text)
        if clean != text:
            write_text_atomic(clean, path)
