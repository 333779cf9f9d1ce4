"""Design-review outputs of a real (small) study: figures, Markdown, self-contained HTML."""

import json
import re

import pandas as pd
import pytest

from dse.report import load_run, report, write_report
from dse.report.review import build_review
from tests.support import SMALL_STUDY

SMALL = SMALL_STUDY


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from dse.search import run

    out = tmp_path_factory.mktemp("study") / "run"
    run(overrides=[*SMALL, "report.enabled=false"], out_dir=out)
    return out


@pytest.fixture(scope="module")
def written(run_dir):
    return write_report(run_dir)


def test_report_writes_figures_and_both_documents(run_dir, written):
    names = {p.name for p in written.figures}
    for fig in ("frontier", "cost", "breakdown", "cache", "session", "session_time"):
        assert {f"{fig}.png", f"{fig}.svg"} <= names, fig
    for p in written.all:
        assert p.is_file() and p.stat().st_size > 500 and p.is_relative_to(run_dir)
    md = written.markdown.read_text()
    # every image the Markdown links exists beside it
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(links) == len(written.figures) // 2
    assert all((run_dir / link).is_file() for link in links)


def test_report_names_the_recommended_configuration_and_how_to_deploy_it(run_dir, written):
    run = load_run(run_dir)
    review = build_review(run)
    first = review.top.iloc[0]
    md = written.markdown.read_text()
    assert f"**Recommendation.** #1: {first['system']}" in md
    # every deploy setting of the winner is printed, with its value
    for key in ("tp", "batch", "decode_units", "prefill_units", "host_gb_per_gpu", "storage_tb"):
        assert re.search(rf"\b{key}={first[key]:g}\b", md.replace(",", "")), key
    assert "What limits it" in md and "bound by" in md
    # the accuracy table lists every accelerator of the study with its held-out error
    for hw in review.errors:
        assert f"| {hw} |" in md
    # files written by the search are listed with the report's own
    for f in ("frontier.parquet", "report.html", "figures/frontier.svg"):
        assert f"`{f}`" in md


def test_html_is_self_contained(written):
    html = written.html.read_text()
    images = re.findall(r'<img src="([^"]+)"', html)
    assert len(images) == len(written.figures) // 2
    assert all(src.startswith("data:image/png;base64,") for src in images)
    assert not re.search(r'(src|href)="(https?:|file:|/)', html)  # nothing fetched from elsewhere


def test_report_is_reproducible_byte_for_byte(run_dir, written):
    before = {p: p.read_bytes() for p in written.all}
    again = write_report(run_dir)
    assert {p: p.read_bytes() for p in again.all} == before


def test_top_configurations_respect_target_ranking_and_diversity(run_dir):
    run = load_run(run_dir)
    review = build_review(run, top=4, per_system=1)
    top = review.top
    assert top["system"].is_unique and len(top) <= 4
    assert top["usd_per_mtok"].is_monotonic_increasing  # rank_by: min usd_per_mtok
    assert (top["tok_s_user"] >= 100).all()  # the study's constraint
    assert review.baseline is not None and review.baseline["system"] == review.systems[0]


def test_sweep_report_compares_runs(tmp_path, run_dir, chromium):
    import shutil

    sweep = tmp_path / "multirun-x"
    for k, extra in enumerate((["a=1"], ["a=2"])):
        job = sweep / f"job{k}"
        shutil.copytree(run_dir, job)
        (job / ".hydra").mkdir()
        (job / ".hydra" / "overrides.yaml").write_text(json.dumps(extra))
    files = report(sweep)
    md = files.markdown.read_text()
    assert "| a=1 |" in md and "| a=2 |" in md and "+0.0 %" in md
    assert (sweep / "figures" / "sweep_frontiers.png").is_file()
    from dse.report.browser import check_page

    page = check_page(files.html)
    assert page.ok and len(page.images) == 1, page.problems()


def test_report_refuses_folders_that_are_not_runs(tmp_path, capsys):
    from dse.cli import main

    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a finished study run" in err[0]
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_pareto_staircase_matches_brute_force():
    import numpy as np

    from dse.report.figures.style import pareto_2d

    rng = np.random.default_rng(3)
    x, y = rng.integers(0, 20, 300).astype(float), rng.normal(size=300)
    for bigger in (True, False):
        idx = pareto_2d(x, y, bigger)
        s = 1 if bigger else -1
        brute = [i for i in range(300) if not any(
            (x[j] >= x[i]) and (s * y[j] >= s * y[i]) and ((x[j], y[j]) != (x[i], y[i]))
            for j in range(300))]  # fmt: skip
        assert sorted(map(tuple, np.c_[x[idx], y[idx]])) == sorted(
            set(map(tuple, np.c_[x[brute], y[brute]])))  # fmt: skip
        assert np.all(np.diff(x[idx]) > 0)


def test_error_band_uses_own_measurements_or_says_it_has_none():
    from dse.report.accuracy import error_band, heldout_errors

    h100 = error_band("h100_sxm")
    own = heldout_errors().query("hardware == 'h100_sxm'")
    assert h100.n == len(own) > 0 and "h100_sxm" in h100.basis
    vr200 = error_band("vr200")
    assert vr200.n == 0 and "no public measurement" in vr200.basis
    assert vr200.interactivity_pct > 0 and vr200.throughput_pct > 0


def test_sensitivity_rows_follow_the_recommended_points(run_dir):
    from dse.report.figures.sensitivity import chosen_sensitivities

    run = load_run(run_dir)
    review = build_review(run, top=2)
    points = review.top["point"].tolist()
    rows = []
    for d, p in enumerate([12345, *points]):  # design 0 is not recommended
        for metric in ("tok_s_user", "usd_per_mtok"):
            rows.append(
                dict(
                    design=d,
                    point=p,
                    hardware="gb200",
                    metric=metric,
                    field="hbm_bw_scale",
                    elasticity=0.1 * (d + 1),
                    feasible=True,
                    per_unit=1.0,
                    unit="TB/s",
                )
            )
    tables = {**run.tables, "sensitivities": pd.DataFrame(rows)}
    chosen = chosen_sensitivities(
        build_review(type(run)(run.path, run.config, run.summary, tables))
    )
    assert set(chosen["point"]) == set(points)
    assert set(chosen["label"]) == {"#1", "#2"}


def test_html_report_renders_in_headless_chromium(chromium, written, tmp_path):
    from dse.report.browser import check_page

    shot = tmp_path / "report.png"
    page = check_page(written.html, screenshot=shot)
    assert page.ok, page.problems()
    assert page.errors == ()
    assert len(page.images) == len(written.figures) // 2
    for image in page.images:  # every figure decoded at its full size and laid out on the page
        assert image.loaded and image.displayed and image.natural_width > 500
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000


def test_committed_example_report_is_small_and_complete():
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "studies" / "seed_rubin_lpx" / "example"
    files = [p for p in example.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 400_000  # examples must not bloat the repo
    md = (example / "report.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(links) >= 5 and all((example / link).is_file() for link in links)


def test_a_study_where_nothing_meets_the_constraints_still_gets_a_report(tmp_path):
    from dse.search import run

    out = run(overrides=[*SMALL, "constraints={tok_s_user: {min: 1e9}}"], out_dir=tmp_path / "r")
    assert out.frontier.empty
    files = write_report(out.out_dir)  # the search returns results; the report reads its files
    assert "No design meets the constraints" in files.markdown.read_text()
    assert files.html.is_file()


def test_unknown_baseline_is_one_clear_line(run_dir, capsys):
    from dse.cli import main

    assert main(["report", str(run_dir), "--baseline", "vr200_nvl7"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "did you mean vr200_nvl72" in err[0]


def test_top_configs_drop_repeated_designs():
    from dse.search.objectives import Objective
    from dse.search.results import top_configs

    rows = [dict(point=p, system=s, software="x", tok_s_user=u, tok_s_per_unit=10.0, usd_per_mtok=c)
            for p, s, u, c in [(1, "a", 100.0, 2.0), (2, "a", 100.0, 2.0), (3, "a", 90.0, 2.5),
                               (4, "b", 80.0, 3.0)]]  # fmt: skip
    top, met = top_configs(pd.DataFrame(rows), Objective("usd_per_mtok", False), (), n=5)
    assert met and top["point"].tolist() == [1, 3, 4]  # design 2 repeats design 1


def test_deploy_card_shows_hypothetical_hardware_only_when_scaled():
    from dse.report.context import _deploy_card

    row = pd.Series(dict(system="s", software="x", decode_hardware="vr200", prefill_units=0,
                         ffn_units=0, flops_scale=1.0, hbm_bw_scale=1.0))  # fmt: skip
    assert not any(s["name"].startswith("hardware variant") for s in _deploy_card(row))
    card = _deploy_card(row.copy().replace({1.0: 1.5}))
    (variant,) = [s for s in card if s["name"].startswith("hardware variant")]
    assert "hbm_bw_scale=1.5" in variant["text"]


def test_session_times_are_shown_for_agent_sessions_only(run_dir, written):
    """A recommended configuration of a session workload lists its session wall time and the
    critical path's parts; fixed-length traffic (a "session" is one request) does not."""
    from dse.report.context import SESSION_METRICS, shown_metrics

    md = written.markdown.read_text()
    for m in ("session_minutes_p95", "session_fanout_minutes", "ttft_ms_p99", "tpot_ms_p99"):
        assert f"| {m} |" in md, m
    review = build_review(load_run(run_dir))
    assert set(SESSION_METRICS) <= set(shown_metrics(review))
    review.run.summary["workload"] = "fixed"
    assert not set(SESSION_METRICS) & set(shown_metrics(review))


def test_frontier_axis_follows_a_p99_interactivity_objective(run_dir):
    """``max:tok_s_user_p99`` draws the frontier on the p99 request's interactivity, and its
    SLA lines on the p99 statistics."""
    import dataclasses

    from dse.report.figures.frontier import interactivity
    from dse.search.objectives import parse_objectives

    review = build_review(load_run(run_dir))
    assert interactivity(review)[0] == "tok_s_user"
    p99 = dataclasses.replace(
        review, objectives=parse_objectives(["max:tok_s_user_p99", "min:usd_per_mtok"])
    )
    assert interactivity(p99)[0] == "tok_s_user_p99"
    front = p99.frontier
    assert (front["tok_s_user_p99"] <= front["tok_s_user"] * (1 + 1e-9)).all()


def test_fixed_traffic_runs_name_their_traffic():
    from dse.report.context import _workload_title

    cfg = {"traffic": {"isl": 2000, "osl": 500}, "workload": {"title": "Multi-turn chat"}}
    assert (
        _workload_title(cfg)
        == "fixed-length requests, 2,000 input / 500 output tokens, 0 cached prefix"
    )


def test_bad_baseline_is_refused_before_the_search(tmp_path):
    from dse.search import run

    with pytest.raises(ValueError, match="did you mean vr200_nvl72"):
        run(overrides=[*SMALL, "report.baseline=vr200_nvl7"], out_dir=tmp_path / "r")
    assert not (tmp_path / "r" / "points.parquet").exists()


def test_report_leaves_matplotlib_settings_alone(run_dir):
    import matplotlib

    backend, size = matplotlib.get_backend(), matplotlib.rcParams["font.size"]
    matplotlib.rcParams["font.size"] = 13.0
    try:
        write_report(run_dir)
        assert matplotlib.get_backend() == backend and matplotlib.rcParams["font.size"] == 13.0
    finally:
        matplotlib.rcParams["font.size"] = size


def test_html_renders_the_study_question_markdown():
    """Issue 19 item 16: the question's Markdown (from the study README) is rendered in the
    HTML report, not printed literally; raw HTML in it is escaped."""
    from dse.report.render import _ENV

    html = _ENV.from_string("{{ q | markdown_inline }}").render(
        q="Which system reaches **≥ 400 tok/s/user** at `$/Mtok`? <script>x</script>"
    )
    assert "<strong>≥ 400 tok/s/user</strong>" in html
    assert "<code>$/Mtok</code>" in html
    assert "**" not in html and "<script>" not in html and "&lt;script&gt;" in html


def test_written_html_report_has_no_literal_markdown_in_the_question(written):
    html = next(p for p in written.all if p.name == "report.html").read_text()
    line = next(ln for ln in html.splitlines() if "<b>Question.</b>" in ln)
    assert "**" not in line
