"""``dse search``: the Hydra app. One job = one study (thousands of design points evaluated
in-process); ``-m`` fans studies out through the configured launcher (basic, joblib, submitit)
and ``hydra/sweeper=dse`` searches a space written as sweep overrides with Optuna in batches.

Errors in the user's input end the job with one line (what, where, how to fix) and exit code 2.
"""

from __future__ import annotations

import logging
import os
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from ..catalog import conf_dir

log = logging.getLogger("dse.search")


def _task(cfg: DictConfig):
    from .study import run_study

    logging.getLogger("jax").setLevel(logging.WARNING)  # backend probing is not news
    hc = HydraConfig.get()
    try:
        outcome = run_study(cfg, dict(hc.runtime.choices), hc.runtime.output_dir)
    except (ValueError, OSError) as e:  # the user's input: one line, exit 2
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        msg = str(e).splitlines()[0] if str(e) else e.__class__.__name__
        print(f"dse search: error: {msg} (rerun with --debug for the traceback)", file=sys.stderr)
        sys.exit(2)
    s = outcome.summary
    if s["engine"] == "milp":
        log.info("mix: %s, $%.0f/h -> %s", s.get("status"), s.get("usd_per_hour", 0), outcome.out_dir)
        print(outcome.best.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
        return s
    else:
        log.info(
            "%s: %d points evaluated, %d meet the constraints, %d on the frontier (%.1f s) -> %s",
            s["study"], s["evaluated"], s["feasible"], s["frontier"], s["seconds"], outcome.out_dir,
        )  # fmt: skip
    print(_best_lines(outcome))
    return s


def _best_lines(outcome) -> str:
    best = outcome.best
    if best is None or best.empty:
        return f"no design meets the constraints; see {outcome.out_dir}/summary.json"
    cols = [c for c in ("system", "software", "decode_units", "prefill_units", "batch",
                        "tok_s_user", "tok_s_per_unit", "usd_per_mtok", "ttft_ms", "why")
            if c in best]  # fmt: skip
    return best[cols].to_string(index=False, float_format=lambda x: f"{x:.4g}")


def main(argv: list[str] | None = None) -> int:
    """Run the Hydra app with ``argv`` as its command line (``dse search ARGS``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    app = hydra.main(version_base="1.3", config_path=str(conf_dir().resolve()), config_name="dse")(
        _task
    )
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()  # a second run in one process (tests, notebooks)
    old = sys.argv
    sys.argv = ["dse search", *argv]
    try:
        app()
    finally:
        sys.argv = old
    return 0
