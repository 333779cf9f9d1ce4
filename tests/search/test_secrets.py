"""Storage passwords never reach files or the terminal; outputs stay under results_dir."""

import pytest

from dse.search.secrets import redact, redact_tree
from tests.support import SMALL_STUDY


@pytest.mark.parametrize(
    "text, clean",
    [
        ("postgresql://u:s3cret@db:5432/x", "postgresql://u:***@db:5432/x"),
        ("mysql+pymysql://root:p%40ss@127.0.0.1/x", "mysql+pymysql://root:***@127.0.0.1/x"),
        ("see postgresql://a:b@h/d and redis://:pw@h", "see postgresql://a:***@h/d and redis://:***@h"),
        ("sqlite:///results/x.db", "sqlite:///results/x.db"),
        ("postgresql://user@host/db", "postgresql://user@host/db"),
        ("http://host:8080/path", "http://host:8080/path"),
    ],
)
def test_redact_masks_only_passwords(text, clean):
    assert redact(text) == clean


def test_redact_tree_walks_configs():
    cfg = {"search": {"storage": "postgresql://u:pw@h/d", "n": 3}, "l": ["x://a:b@c"]}
    assert redact_tree(cfg) == {"search": {"storage": "postgresql://u:***@h/d", "n": 3},
                                "l": ["x://a:***@c"]}  # fmt: skip


def test_password_in_storage_url_never_written_or_printed(tmp_path, capsys):
    from dse.cli import main

    url = "postgresql://u:s3cret@127.0.0.1:1/db"  # nothing listens on port 1
    # An earlier run's file keeps the run folder after the refusal (a refused run's own folder
    # is removed, issue 19), so the files this run wrote there can be checked.
    earlier = tmp_path / "kv_tier_sizing" / "pw" / "earlier.txt"
    earlier.parent.mkdir(parents=True)
    earlier.write_text("an earlier run")
    with pytest.raises(SystemExit) as e:
        main(["search", *SMALL_STUDY, "search=optuna", "search.n_trials=8", f"search.storage={url}",
              f"results_dir={tmp_path}", "run=pw"])  # fmt: skip
    assert e.value.code == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert "search.storage=postgresql://u:***@127.0.0.1:1/db" in err[-1]
    assert "s3cret" not in captured.out + captured.err
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p != earlier]
    assert files and not [p for p in files if b"s3cret" in p.read_bytes()]


def test_journal_storage_must_stay_in_the_run_folder(tmp_path, capsys):
    from dse.cli import main

    with pytest.raises(SystemExit) as e:
        main(["search", *SMALL_STUDY, "search=optuna", f"search.storage={tmp_path}/x.journal",
              f"results_dir={tmp_path}/r", "run=j"])  # fmt: skip
    assert e.value.code == 2 and "kept in the run folder" in capsys.readouterr().err
    assert not (tmp_path / "x.journal").exists()
