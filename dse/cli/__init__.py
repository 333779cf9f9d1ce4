"""The ``dse`` command line: one sub-command per job.

    dse predict IN.csv -o OUT.csv      scenarios in, predictions out
    dse calibrate [--data CSV]         fit efficiencies, write conf/calibration/default.yaml
    dse validate [--folds 5]           error table: in-sample and cross-validated
    dse main                           the default job (README): the default study (dse search)
    dse search study=NAME [k=v ...]    a study (Hydra app: -m multirun, hydra/sweeper=dse; --quiet, --json)
    dse report RESULTS_DIR             figures + report.md + report.html for a run or a sweep

Errors in the user's input print one line (what, where, how to fix) and exit with status 2;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..jax_config import configure

EXIT_USAGE = 2


class UserError(Exception):
    """An input problem the user can fix; printed as one line."""


def _cmd_predict(args) -> int:
    from ..calibration import Calibration
    from ..predict import predict_frame

    src = Path(args.input)
    if not src.exists():
        raise UserError(
            f"input file {src} does not exist; pass a CSV in the dse predict schema (see README)"
        )
    from ..scenarios.reader import read_scenarios

    try:
        df = read_scenarios(src)
    except ValueError as e:
        raise UserError(str(e)) from e
    cols = set(df.columns)
    # Instance rows need hardware; stack rows name a system or a workload instead.
    stack_table = bool(cols & {"system", "workload"})
    missing = ({"model"} - cols) or (set() if stack_table else {"hardware"} - cols)
    if missing:
        raise UserError(
            f"{src}: missing column(s) {sorted(missing)}; the header needs at least model,hardware "
            "(or model,system / model,workload for stack rows)"
        )
    from ..scenarios.schema import check_columns

    df = df.rename(columns=lambda c: c.strip() if isinstance(c, str) else c)
    header_errors, header_warnings = check_columns(df.columns)
    if header_errors:
        raise UserError(f"{src}: {header_errors[0]}")
    for w in header_warnings:
        print(f"dse predict: warning: {src}: {w}", file=sys.stderr)
    cal = Calibration.load(args.calibration) if args.calibration else Calibration.load()
    t0 = time.perf_counter()
    out = predict_frame(df, calibration=cal)
    dt = time.perf_counter() - t0
    dst = Path(args.output)
    dst.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(dst, index=False)
    bad = int((~out["feasible"].astype(bool)).sum())
    print(
        f"dse predict: {len(out)} rows ({len(out) - bad} feasible, {bad} infeasible or invalid) in {dt:.1f} s -> {dst}"
    )
    return 0


def _cmd_calibrate(args) -> int:
    from ..calibration.run import calibrate

    path = calibrate(data=args.data, output=args.output, maxiter=args.maxiter)
    print(f"dse calibrate: wrote {path}")
    return 0


def _cmd_validate(args) -> int:
    from ..calibration.run import validate

    validate(
        data=args.data,
        calibration=args.calibration,
        folds=args.folds,
        output=args.output,
        markdown=args.markdown,
    )
    return 0


def _cmd_stack(args) -> int:
    """Evaluate a declared grid of whole-stack designs; CSVs + a best-per-system summary."""
    import time

    from ..stack.grid import load_grid, run_grid

    t0 = time.time()
    grid = load_grid(args.grid)
    points, best = run_grid(grid)
    out = Path(args.output or Path("results") / "stack" / Path(args.grid).parent.name)
    out.mkdir(parents=True, exist_ok=True)
    points.to_csv(out / "points.csv", index=False)
    best.to_csv(out / "best.csv", index=False)
    cols = ["system", "software", "tok_s_user", "ttft_ms", "tok_s_per_unit", "usd_per_mtok",
            "usd_per_session", "hit_rate", "units", "why"]  # fmt: skip
    shown = best[[c for c in cols if c in best.columns]]
    print(shown.to_string(index=False, float_format=lambda x: f"{x:,.3g}"))
    print(
        f"dse stack: {len(points)} designs ({int(points['feasible'].sum())} feasible, "
        f"{int(points['meets_constraints'].sum())} meet the constraints) in "
        f"{time.time() - t0:.1f} s -> {out}/points.csv, {out}/best.csv"
    )
    return 0


def _cmd_report(args) -> int:
    from ..report import report

    t0 = time.perf_counter()
    files = report(args.results_dir, top=args.top, baseline=args.baseline)
    print(
        f"dse report: {files.markdown}, {files.html.name} and {len(files.figures) // 2} figures "
        f"(PNG + SVG in {files.markdown.parent / 'figures'}) in {time.perf_counter() - t0:.1f} s"
    )
    return 0


def _cmd_main(args) -> int:
    """The default study end to end (``dse search`` with no overrides)."""
    return _search([f for f in ("--quiet", "--json") if getattr(args, f[2:])], args.debug)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dse", description="Design-space exploration for LLM inference infrastructure."
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="command", required=True)

    pr = sub.add_parser("predict", help="predict TTFT/TPOT/throughput for a CSV of scenarios")
    pr.add_argument("input", help="scenario CSV (columns: see README)")
    pr.add_argument("-o", "--output", required=True, help="where to write the CSV with predictions")
    pr.add_argument(
        "--calibration", help="calibration YAML (default conf/calibration/default.yaml)"
    )
    pr.set_defaults(func=_cmd_predict)

    ca = sub.add_parser("calibrate", help="fit efficiency parameters to measured points")
    ca.add_argument("--data", help="measured CSV (default conf/calibration/measured.csv)")
    ca.add_argument(
        "-o",
        "--output",
        help="output YAML (default: overwrites conf/calibration/default.yaml, the shipped calibration)",
    )
    ca.add_argument("--maxiter", type=int, default=200, help="L-BFGS iterations (default 200)")
    ca.set_defaults(func=_cmd_calibrate)

    va = sub.add_parser(
        "validate", help="error of the model vs measurements, by source/hardware/model/phase"
    )
    va.add_argument("--data", help="measured CSV (default conf/calibration/measured.csv)")
    va.add_argument(
        "--calibration", help="calibration YAML to validate (default conf/calibration/default.yaml)"
    )
    va.add_argument(
        "--folds",
        type=int,
        default=0,
        help="k-fold cross-validation (refits k times); 0 = in-sample only",
    )
    va.add_argument("-o", "--output", help="also write per-point errors to this CSV")
    va.add_argument("--markdown", help="also write the error tables as Markdown to this file")
    va.set_defaults(func=_cmd_validate)

    st = sub.add_parser(
        "stack", help="evaluate a grid of whole-stack designs (systems x software x sweeps)"
    )
    st.add_argument("grid", help="grid YAML, e.g. studies/seed_rubin_lpx/grid.yaml")
    st.add_argument("-o", "--output", help="output folder (default results/stack/<study>)")
    st.set_defaults(func=_cmd_stack)

    re_ = sub.add_parser(
        "report",
        help="design-review figures and reports (Markdown + self-contained HTML) of a finished "
        "run, or of a multirun sweep folder (one report comparing its runs)",
    )
    re_.add_argument("results_dir", help="results/<study>/<run>/ or results/<study>/multirun-<run>/")
    re_.add_argument("--top", type=int, default=None, help="recommended configurations (default 5)")
    re_.add_argument("--baseline", help="system to compare against (default: the space's first)")
    re_.set_defaults(func=_cmd_report)

    ma = sub.add_parser(
        "main", help="the default job: the default study (dse search, no overrides) end to end"
    )
    ma.add_argument("-q", "--quiet", action="store_true", help="print nothing (errors still go to stderr)")
    ma.add_argument("--json", action="store_true", help="print one JSON document (summary, best, report paths)")
    ma.set_defaults(func=_cmd_main)
    se = sub.add_parser(
        "search",
        help="run a study: dse search study=NAME [key=value ...] (Hydra; -m for multirun, "
        "--quiet/--json for scripts, --help for its options)",
        add_help=False,
    )
    se.set_defaults(func=None)
    return p


# Script-friendly output for `dse search`/`dse main`: flags become Hydra overrides.
OUTPUT_FLAGS = {"--quiet": "ui.output=quiet", "-q": "ui.output=quiet", "--json": "ui.output=json"}


def _search(argv: list[str], debug: bool) -> int:
    from .search import main as search_main

    argv = [OUTPUT_FLAGS.get(a, a) for a in argv]
    if debug:
        import os

        os.environ["HYDRA_FULL_ERROR"] = "1"
    return search_main(argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    configure()  # JAX's float64 and compilation cache: the entry point owns them
    debug = "--debug" in argv[:1]
    rest = argv[1:] if debug else argv
    if rest[:1] == ["search"]:  # Hydra owns the rest of the command line
        return _search(rest[1:], debug)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UserError as e:
        if args.debug:
            raise
        print(f"dse {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, OSError) as e:
        # Catalog/config problems (CatalogError is a ValueError) are the user's to fix.
        if args.debug:
            raise
        msg = str(e).splitlines()[0] if str(e) else e.__class__.__name__
        print(
            f"dse {args.command}: error: {msg} (rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return EXIT_USAGE

