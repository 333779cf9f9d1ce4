"""One evaluator: every path that evaluates system designs (names, field dicts, a search
space's columns, Jacobians) adds a workload's sub-agent replica the same way, through
``Stack.evaluate_arrays`` / ``Stack.jacobian`` and ``system_metrics.with_sub_agents``."""

import shutil

import numpy as np
import pytest
import yaml

from dse.catalog import conf_dir, load_catalog
from dse.search.evaluate import Evaluator
from dse.search.space import Space
from dse.stack import Stack
from dse.stack.jacobian import CONTINUOUS_FIELDS

MODEL = "llama3.1-70b"


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """agentic_coding with its sub-agents on Llama-3.1-8B (a copy of conf/)."""
    root = tmp_path_factory.mktemp("conf") / "conf"
    shutil.copytree(conf_dir(), root)
    path = root / "workload" / "agentic_coding.yaml"
    data = yaml.safe_load(path.read_text())
    data["sub_agent_model"] = "llama3.1-8b"
    path.write_text(yaml.safe_dump(data))
    mp = pytest.MonkeyPatch()
    mp.setenv("DSE_CONF", str(root))
    load_catalog.cache_clear()
    try:
        yield Stack(workload="agentic_coding", sessions=16)
    finally:
        mp.undo()
        load_catalog.cache_clear()


@pytest.fixture(scope="module")
def rows(mixed):
    return [mixed.design_values(MODEL, "gb200_nvl72", "default", batch=b) for b in (4, 16, 64)]


def test_every_batched_path_adds_the_sub_agent_replica_once(mixed, rows):
    by_values = mixed.evaluate_values(rows)
    by_names = mixed.evaluate(
        [dict(model=MODEL, system="gb200_nvl72", software="default", batch=b) for b in (4, 16, 64)]
    )
    main_only = mixed.evaluate_values(rows, profile=mixed.profile)  # a profile: exactly that
    space = Space.from_mapping(
        {"systems": ["gb200_nvl72"], "choices": {"software": ["default"], "batch": [4, 16, 64]}}
    )
    ev = Evaluator(mixed, MODEL, space, chunk=256)  # the shape evaluate_values compiles
    cols = ev.decode(np.arange(space.size))
    by_space = ev.frame(cols, ev.evaluate(cols)).sort_values("batch", ignore_index=True)
    for df in (by_names, by_space):
        np.testing.assert_allclose(df["usd_per_session"], by_values["usd_per_session"], rtol=1e-12)
        assert (df["feasible"] == by_values["feasible"]).all()
    sub = by_names["usd_per_session"] - by_names["main_usd_per_session"]
    np.testing.assert_allclose(by_names["main_usd_per_session"], main_only["usd_per_session"],
                               rtol=1e-12)  # fmt: skip
    assert (sub > 0).all()  # the replica costs something: it was added, not dropped


def test_jacobian_adds_the_sub_agent_replica_where_the_batched_path_does(mixed, rows, monkeypatch):
    """``Stack.jacobian`` runs the one compiled program (tested in tests/search/
    test_gradients.py) on both replicas and adds values and derivatives of the metrics in
    ``SUB_AGENT_ADDED`` only; a design is feasible only where both replicas are. The program is
    replaced by a stand-in here, so the rule is checked without compiling it again."""
    import dse.stack.api as api

    metrics = ("usd_per_session", "tok_s_user")
    n, f = len(rows), len(CONTINUOUS_FIELDS)
    calls = []

    def program(tables, eff, rt, cost, profile, designs, x, metrics):
        sub = profile is mixed.sub_profile
        calls.append((sub, np.asarray(designs.model)[:n].copy()))
        size = len(np.asarray(x))
        y = np.tile(np.array([10.0, 5.0]) * (2.0 if sub else 1.0), (size, 1))
        jac = np.ones((size, 2, f)) * (3.0 if sub else 1.0)
        feasible = np.array([True, not sub, True] + [True] * (size - 3))
        jac = np.where(feasible[:, None, None], jac, 0.0)
        return y, jac, feasible, np.ones((size, 2, f), bool)

    # the stand-in runs as it is: no export, no jit
    monkeypatch.setattr(api, "Kernel", lambda name, fn, **kw: lambda *a: tuple(fn(*a)))
    monkeypatch.setattr(mixed, "_jacobians", {})
    monkeypatch.setattr(api, "jacobian_batch", program)
    x = np.array([[r[k] for k in CONTINUOUS_FIELDS] for r in rows])
    y, jac, feasible, finite = mixed.jacobian(rows, x, metrics)
    assert [c[0] for c in calls] == [False, True]
    assert (calls[1][1] == mixed.sub_model_index).all()  # the replica runs the sub-agent model
    np.testing.assert_array_equal(y[:, 0], 30.0)  # usd_per_session: 10 + 20
    np.testing.assert_array_equal(y[:, 1], 5.0)  # tok_s_user: the main agent's
    assert feasible.tolist() == [True, False, True]
    np.testing.assert_array_equal(jac[[0, 2], 0], 4.0)
    np.testing.assert_array_equal(jac[[0, 2], 1], 1.0)
    assert (jac[1] == 0.0).all() and finite.all()
