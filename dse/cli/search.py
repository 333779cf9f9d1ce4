"""``dse search``: the Hydra app. One job = one study (thousands of design points evaluated
in-process); ``-m`` fans studies out through the configured launcher (basic, joblib, submitit)
and ``hydra/sweeper=dse`` searches a space written as sweep overrides with Optuna in batches.

Errors in the user's input end the job with one line (what, where, how to fix) and exit code 2.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from ..catalog import conf_dir
from ..jax_config import configure
from ..progress import MODES as PROGRESS_MODES
from ..progress import make_progress
from ..search.overrides import check_overrides, merge_mapping_overrides
from ..search.secrets import redact, redact_files

log = logging.getLogger("dse.search")


OUTPUTS = ("text", "json", "quiet")


def _task(cfg: DictConfig):
    from ..search.study import run_study  # imported once Hydra has checked the command line

    logging.getLogger("jax").setLevel(logging.WARNING)  # backend probing is not news
    # Nor is matplotlib building its font cache on a first run ("generated new fontManager"):
    # Hydra's root handler would put it on stdout between dse's lines and into --json output.
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    ui = dict(cfg.get("ui") or {})

    output = str(ui.get("output", "text"))
    hc = HydraConfig.get()
    try:
        if output not in OUTPUTS:
            raise ValueError(f"ui.output={output!r} is not one of {', '.join(OUTPUTS)}")
        progress = str(ui.get("progress", "auto"))
        if progress.strip().lower() not in PROGRESS_MODES:  # --json/--quiet never use it
            raise ValueError(f"ui.progress={progress!r} is not one of {', '.join(PROGRESS_MODES)}")
        if output != "text":  # stdout carries the JSON document only; quiet prints nothing
            _quiet_console()
        _progress_to_stderr()
        out = _inside_results(cfg, hc.runtime.output_dir)
        redact_files(out / str(hc.output_subdir or ".hydra"))  # Hydra's copies of the command line
        progress = make_progress(progress if output == "text" else "none")
        try:
            outcome = run_study(cfg, dict(hc.runtime.choices), out, progress=progress)
            # The report reads the files the search just wrote (the CLI owns the call).
            report = _report(cfg, out, progress)
        finally:
            progress.close()
    except (ValueError, OSError) as e:  # the user's input: one line, exit 2
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        msg = redact(str(e).splitlines()[0]) if str(e) else e.__class__.__name__
        print(f"dse search: error: {msg} (rerun with --debug for the traceback)", file=sys.stderr)
        _drop_refused_run(cfg, Path(hc.runtime.output_dir))
        sys.exit(2)
    if output == "json":
        print(json.dumps(_json_document(outcome, report), default=str))
    elif output == "text":
        print(run_summary(outcome, report))
    return outcome.summary


def _report(cfg, out: Path, progress):
    """The design-review report (``report.enabled``), built from the files just written. The
    search's tables are already safe on disk, so a report that fails is a warning (with the
    command that retries it), not a lost run; ``--debug`` raises instead."""
    from ..report import write_report
    from ..search.study import report_top

    opts = dict(cfg.get("report") or {})
    if not opts.get("enabled", True):
        return None

    try:
        with progress.phase("report: figures, report.md, report.html"):
            return write_report(
                out,
                top=report_top(cfg),
                baseline=opts.get("baseline"),
            )
    except Exception as e:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        log.warning("report not written (%s: %s); the tables are. Retry: dse --debug report %s",
                    type(e).__name__, str(e).splitlines()[0] if str(e) else "", out)  # fmt: skip
        return None


# What a run refused before it computed anything leaves in its folder: Hydra's copies of the
# configuration, dse's config.yaml and empty log files.
_REFUSED_RUN_FILES = {".hydra", "config.yaml"}


def _drop_refused_run(cfg, folder: Path) -> None:
    """Remove the run folder of a refused run when it holds nothing else (a folder with results
    of an earlier run under the same ``run=`` is left alone), and its study folder if that is
    left empty, so a mistake leaves no trace in ``results_dir``."""
    try:
        folder, root = folder.resolve(), Path(str(cfg.get("results_dir", "results"))).resolve()
        if not folder.is_dir() or not folder.is_relative_to(root) or folder == root:
            return
        for p in folder.iterdir():
            empty_log = p.suffix == ".log" and p.is_file() and p.stat().st_size == 0
            if p.name not in _REFUSED_RUN_FILES and not empty_log:
                return
        shutil.rmtree(folder)
        parent = folder.parent
        if parent != root and parent.is_relative_to(root) and not any(parent.iterdir()):
            parent.rmdir()
    except OSError:
        pass  # best effort: the error line above is what matters


def _inside_results(cfg, output_dir) -> Path:
    """The run folder, refused when ``run=`` or ``hydra.run.dir`` would put it outside
    ``results_dir`` (outputs are written only under the chosen results directory)."""
    out, root = Path(output_dir).resolve(), Path(str(cfg.get("results_dir", "results"))).resolve()
    if not out.is_relative_to(root):
        raise ValueError(
            f"the run folder {out} is outside results_dir={root}; give run= a plain name "
            "(no '/' or '..') or choose another results_dir"
        )
    return out


def _quiet_console() -> None:
    """Drop INFO logging on the console (Hydra's job logging adds a stream handler to root);
    the run's ``search.log`` file keeps everything."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(
            handler, logging.FileHandler
        ):
            handler.setLevel(logging.WARNING)


def _progress_to_stderr() -> None:
    """Progress log lines (no terminal: dse.progress.LogProgress) go to stderr like the bars, not
    through Hydra's console handler on stdout, which keeps the results."""
    logger = logging.getLogger("dse.progress")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("[%(asctime)s][dse] %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
        logger.propagate = False


def _json_document(outcome, report) -> dict:
    best = outcome.best
    records = best.to_dict("records") if best is not None and len(best) else []
    return {
        **outcome.summary, "out_dir": str(outcome.out_dir),
        "best": records if outcome.summary.get("engine") == "milp" else records[:20],
        "report": {"html": str(report.html), "markdown": str(report.markdown),
                   "figures": [str(p) for p in report.figures]} if report else None,
    }  # fmt: skip


def run_summary(outcome, report=None) -> str:
    """What a person reads at the end of a run: the best configurations and where files are."""
    s = outcome.summary
    lines = []
    if s["engine"] == "milp":
        lines.append(outcome.best.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
        lines.append(f"mix: {s.get('status')}, ${s.get('usd_per_hour', 0):,.0f}/h, "
                     f"${s.get('usd_per_mtok', 0):.3g}/Mtok ({s['seconds']:.1f} s)")  # fmt: skip
    else:
        lines.append(_best_lines(outcome))
        lines.append(
            f"{s['study']}: {s['evaluated']:,} designs evaluated, {s['feasible']:,} meet the "
            f"constraints, {s['frontier']} on the frontier ({s['seconds']:.1f} s)"
        )
    out = outcome.out_dir
    lines.append(f"written to {out}/")
    if report is not None:
        r = report
        lines.append(f"  report:  {r.html.name} (self-contained, open in a browser), {r.markdown.name}, "
                     f"figures/ ({len(r.figures) // 2} figures, PNG + SVG)")  # fmt: skip
    tables = sorted({f.rsplit(".", 1)[0] for f in s.get("files", []) if f.endswith(".parquet")})
    if tables:
        lines.append(
            f"  tables:  {', '.join(tables)} (.parquet and .csv), summary.json, config.yaml"
        )
    return "\n".join(lines)


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
    configure()  # JAX's float64 and compilation cache: the entry point owns them
    argv = merge_mapping_overrides(list(sys.argv[1:] if argv is None else argv))
    try:
        check_overrides(argv)
    except ValueError as e:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"dse search: error: {e} (rerun with --debug for the traceback)", file=sys.stderr)
        sys.exit(2)
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
