"""Hydra callback: after ``dse search -m ...`` finishes, one report comparing the sweep's runs.

Registered in ``conf/dse.yaml`` (``hydra.callbacks.sweep_report``); each job already wrote its
own report, this adds ``multirun-<run>/report.{md,html}`` and ``figures/sweep_frontiers.*``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from hydra.experimental.callback import Callback

log = logging.getLogger("dse.report")


class SweepReport(Callback):
    def on_multirun_end(self, config, **kwargs) -> None:
        if not (config.get("report") or {}).get("enabled", True):
            return
        from . import write_sweep_report
        from .load import sweep_jobs

        path = Path(config.hydra.sweep.dir)
        if not path.is_dir() or not sweep_jobs(path):
            return
        files = write_sweep_report(path)
        if (config.get("ui") or {}).get("output", "text") == "text":
            print(f"sweep report: {files.html} ({len(sweep_jobs(path))} runs compared)")
