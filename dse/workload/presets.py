"""Workload presets: ``conf/workload/<name>.yaml`` -> :class:`SessionParams`.

Each preset sets every SessionParams field and cites a source for each in its ``sources:``
mapping (workloads.md sections/lines, or CALIBRATED / ESTIMATE with the reasoning). Presets:
``chat``, ``chat_tools``, ``agentic_coding`` (the seed session) and ``deep_research``.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from dse.files import conf_dir as default_conf_dir
from dse.files import load_yaml
from dse.workload.params import SessionParams


def workload_dir(conf_dir: str | Path | None = None) -> Path:
    """``<conf>/workload``; ``conf`` defaults to :func:`dse.files.conf_dir`."""
    return Path(conf_dir if conf_dir is not None else default_conf_dir()) / "workload"


def available_presets(conf_dir: str | Path | None = None) -> list[str]:
    return sorted(p.stem for p in workload_dir(conf_dir).glob("*.yaml"))


def preset_path(name: str, conf_dir: str | Path | None = None) -> Path:
    """The preset's YAML file; an unknown name is a ValueError listing the available ones."""
    known = available_presets(conf_dir)
    key = str(name).strip().lower().replace("-", "_")
    if key not in known:
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown workload preset {name!r}{hint} (available: {', '.join(known)})")
    return workload_dir(conf_dir) / f"{key}.yaml"


def load_preset_raw(name: str, conf_dir: str | Path | None = None) -> dict:
    """The preset's YAML mapping, including ``title`` and ``sources``."""
    path = preset_path(name, conf_dir)
    raw = load_yaml(path.read_text())
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping at top level")
    return raw


def load_preset(name: str, conf_dir: str | Path | None = None) -> SessionParams:
    """SessionParams of a preset; unknown fields are a ValueError naming the file."""
    path = preset_path(name, conf_dir)
    try:
        return SessionParams.from_dict(load_preset_raw(name, conf_dir))
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: {e}") from e


def tokens_per_step(alpha: float, k: int) -> float:
    """Expected tokens per target step, tau = (1 - alpha^(k+1)) / (1 - alpha) (Leviathan et al.
    2023; workloads.md §3), including the bonus token."""
    if alpha >= 1.0:
        return float(k + 1)
    return (1.0 - alpha ** (k + 1)) / (1.0 - alpha)


def acceptance_from_tau(tau: float, k: int) -> float:
    """Invert :func:`tokens_per_step` for the per-token acceptance alpha (bisection): used where a
    source reports only tau (mean accepted length) for a draft length k."""
    if not 1.0 <= tau <= k + 1:
        raise ValueError(f"tau must lie in [1, k + 1] = [1, {k + 1}]")
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if tokens_per_step(mid, k) < tau else (lo, mid)
    return 0.5 * (lo + hi)
