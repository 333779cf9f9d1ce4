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
