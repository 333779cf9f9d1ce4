"""The one number validator: every layer that reads a number from a person says the same thing
about the same mistake, in one line that names where and how to fix it."""

import math

import numpy as np
import pandas as pd
import pytest
import yaml

from dse.catalog import Catalog, load_cost_params
from dse.files import conf_dir
from dse.model.cost import COST_FIELDS
from dse.scenarios.schema import parse_frame
from dse.search import Optuna
from dse.values import count, number

MODEL = "llama3.1-8b"
OPTUNA = {k: v for k, v in yaml.safe_load((conf_dir() / "search/optuna.yaml").read_text()).items()
          if k != "_target_"}  # fmt: skip


@pytest.mark.parametrize(
    ("value", "kwargs", "message"),
    [
        ("abc", {}, "x='abc' is not a number; write a plain number"),
        (None, {}, "x=None is not a number"),
        (True, {}, "x=True is not a number"),
        ([1], {}, "x=[1] is not a number"),
        ("nan", {}, "x='nan' is not finite; write a finite number"),
        (math.inf, {}, "x=inf is not finite"),
        ("abc", {"blank_ok": True}, "write a plain number or leave it blank"),
        (-1, {}, "x=-1 is below 0; use a value >= 0"),
        (65, {"maximum": 64}, "x=65 is above 64; use a value <= 64"),
        (2.5, {"integer": True}, "x=2.5 must be a whole number (it counts something)"),
        (
            2.5,
            {"integer": True, "why": "tp counts ranks"},
            "must be a whole number; tp counts ranks",
        ),
        ("2", {"text_ok": False}, "x='2' is not a number"),
    ],
)
def test_each_mistake_is_one_line_that_names_where_and_the_fix(value, kwargs, message):
    with pytest.raises(ValueError) as caught:
        number("x", value, **kwargs)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("value", [3, 3.0, "3", " 3 ", np.int64(3), np.float32(3.0)])
def test_plain_numbers_in_any_spelling_are_floats(value):
    x = number("x", value, integer=True, minimum=1, maximum=3)
    assert x == 3.0 and type(x) is float


def test_count_is_an_int_with_a_minimum_of_one():
    assert count("search.n_trials", "4000") == 4000 and type(count("n", 7.0)) is int
    with pytest.raises(ValueError, match=r"search\.n_trials=0 is below 1"):
        count("search.n_trials", 0)


def test_entry_points_share_the_validator():
    """The same mistake at three entry points (a cost override, a table cell, a search
    setting) reads the same."""
    field = COST_FIELDS[0]
    with pytest.raises(ValueError, match=f"{field}='cheap' is not a number; write a plain number"):
        load_cost_params(overrides={field: "cheap"})
    row = {"phase": "decode", "model": MODEL, "hardware": "h100_sxm", "tp": "eight"}
    _, errors = parse_frame(pd.DataFrame([row]), Catalog())
    assert "column tp='eight' is not a number; write a plain number or leave it blank" in errors[0]
    with pytest.raises(ValueError, match=r"search\.n_trials='many' is not a number"):
        Optuna(**{**OPTUNA, "n_trials": "many"})
