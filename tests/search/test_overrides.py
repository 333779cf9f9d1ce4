"""Command-line mistakes end as one line with exit status 2 before Hydra runs anything."""

import pytest

from dse.search.overrides import check_overrides


@pytest.mark.parametrize(
    "args, words",
    [
        (["study=nope"], ["study=nope", "no such config", "choose one of", "seed_rubin_lpx"]),
        (["model=kimi-k"], ["did you mean kimi-k2?"]),
        (["-m", "hardware=h200_sxm,b20"], ["hardware=b20", "did you mean b200?"]),
        (["search.n_trials=[1"], ["not valid override syntax", "override_grammar"]),
        (["sesions=4"], ["Could not override 'sesions'", "did you mean sessions?", "+sesions=4"]),
        (["hardware=null"], ["cannot be set to null", "~hardware"]),
        (["run=../../etc"], ["plain folder name", "results_dir="]),
    ],
)
def test_bad_overrides_say_what_where_and_how(args, words):
    with pytest.raises(ValueError) as e:
        check_overrides(args)
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg


def test_good_overrides_and_hydra_flags_pass():
    check_overrides(["study=kv_tier_sizing", "search=optuna", "search.n_trials=10", "~hardware"])
    check_overrides(["-m", "study=h200_b200_gb200_chat", "hardware=h200_sxm,b200"])
    check_overrides(["--cfg", "job", "anything=goes"])  # Hydra prints the config itself


def test_cli_prints_one_line_and_exits_2(capsys):
    from dse.cli import main

    with pytest.raises(SystemExit) as e:
        main(["search", "study=blackwell_vs_rubn"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "did you mean blackwell_vs_rubin?" in err[0]


# ----- issue 19 item 11: config groups from the user's own folders ------------------------------
@pytest.fixture()
def config_dir(tmp_path):
    d = tmp_path / "myconf"
    (d / "space").mkdir(parents=True)
    (d / "space" / "broken.yaml").write_text("choices: [1, 2\n  bad")
    (d / "space" / "scalar.yaml").write_text("5\n")
    (d / "space" / "mine.yaml").write_text("choices: {system: [gb200_nvl72], batch: [8]}\n")
    return d


@pytest.mark.parametrize(
    "make_args, words",
    [
        (lambda d: ["--config-dir", str(d), "space=broken"],
         ["space=broken", "broken.yaml is not valid YAML at line 2", "fix the file"]),
        (lambda d: [f"--config-dir={d}", "space=scalar"],
         ["space=scalar", "scalar.yaml holds a int, not a mapping"]),
        (lambda d: ["-cd", str(d / "nope"), "space=mine"], ["not a folder"]),
        (lambda d: [f"hydra.searchpath=[file://{d}]", "space=broken"], ["is not valid YAML"]),
    ],
)  # fmt: skip
def test_broken_files_in_a_config_dir_are_one_line(config_dir, make_args, words):
    with pytest.raises(ValueError) as e:
        check_overrides(make_args(config_dir))
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, msg


def test_a_config_dir_adds_its_files_to_the_groups(config_dir):
    """A space that only lives in the user's folder is found by both ways of naming it (the
    search path override was refused as 'no such config' before Hydra could see it)."""
    check_overrides(["--config-dir", str(config_dir), "space=mine"])
    check_overrides([f"hydra.searchpath=[file://{config_dir}]", "space=mine"])
    with pytest.raises(ValueError, match="no such config"):
        check_overrides(["space=mine"])  # not without the folder
