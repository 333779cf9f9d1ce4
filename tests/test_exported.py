"""Exported kernels (dse.exported): written once, loaded by later processes without tracing,
never used after a model change or when unreadable, and equal to the jitted function."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dse.exported as exported
from dse.exported import Kernel

TRACES: list[str] = []


def _toy(a, tree):
    TRACES.append("traced")  # runs only while JAX traces
    return (a * tree["x"] + jnp.sin(tree["y"]).sum(), jnp.cumsum(a))


def _args(n=8):
    a = jnp.arange(n, dtype=jnp.float64)
    return a, {"x": jnp.float64(2.5), "y": jnp.linspace(0.0, 1.0, 3)}


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setattr(exported, "store", lambda: tmp_path)
    monkeypatch.setattr(exported, "_LOADED", {})  # this process has loaded nothing yet
    TRACES.clear()
    return tmp_path


def _new_process(monkeypatch):
    """Forget what this process loaded, as a new process starts."""
    monkeypatch.setattr(exported, "_LOADED", {})


def test_a_later_process_loads_the_artifact_without_tracing(store, monkeypatch):
    first = Kernel("toy", _toy)(*_args())
    assert len(list(store.glob("toy-*.jaxexport"))) == 1 and TRACES == ["traced"]
    _new_process(monkeypatch)
    again = Kernel("toy", _toy)(*_args())  # a new Kernel, as a new process would build it
    assert TRACES == ["traced"]  # loaded, not traced
    plain = jax.jit(_toy)(*_args())
    for got, want in zip((*first, *again), (*plain, *plain)):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_a_second_kernel_of_the_process_reuses_the_loaded_program(store):
    Kernel("toy", _toy)(*_args())
    (path,) = store.glob("toy-*.jaxexport")
    path.unlink()  # not read again: the process keeps what it loaded (another Stack, a test)
    out = Kernel("toy", _toy)(*_args())
    assert TRACES == ["traced"] and not path.exists()
    np.testing.assert_array_equal(np.asarray(out[1]), np.cumsum(np.arange(8.0)))


def test_only_the_first_call_of_a_program_holds_the_process_lock(store, monkeypatch):
    held = []
    real = exported._process_lock

    def recording(path):
        held.append(path.name)
        return real(path)

    monkeypatch.setattr(exported, "_process_lock", recording)
    kernel = Kernel("toy", _toy)
    kernel(*_args())
    kernel(*_args())
    Kernel("toy", _toy)(*_args())
    assert len(held) == 1 and held[0].startswith("toy-") and held[0].endswith(".lock")


def test_the_process_lock_makes_a_second_holder_wait(tmp_path):
    import threading
    import time

    path, order = tmp_path / "k.lock", []

    def second():
        with exported._process_lock(path):  # another open file: flock blocks it
            order.append("second")

    with exported._process_lock(path):
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.3)
        order.append("first done")
    thread.join(5)
    assert order == ["first done", "second"]


def test_new_shapes_static_settings_or_sources_are_new_artifacts(store, monkeypatch):
    Kernel("toy", _toy)(*_args(8))
    Kernel("toy", _toy)(*_args(16))  # another shape
    Kernel("toy", _toy, static=("tok_s_user",))(*_args(8))  # another static setting
    assert len(list(store.glob("toy-*.jaxexport"))) == 3
    TRACES.clear()
    monkeypatch.setattr(exported, "source_hash", lambda: "a changed model")
    Kernel("toy", _toy)(*_args(8))
    assert TRACES == ["traced"]  # the old artifact was not used: traced and exported anew
    assert len(list(store.glob("toy-*.jaxexport"))) == 4


def test_an_unreadable_artifact_is_rebuilt(store, monkeypatch):
    Kernel("toy", _toy)(*_args())
    (path,) = store.glob("toy-*.jaxexport")
    path.write_bytes(b"truncated")
    _new_process(monkeypatch)
    TRACES.clear()
    out = Kernel("toy", _toy)(*_args())
    assert TRACES == ["traced"] and path.stat().st_size > 100
    np.testing.assert_array_equal(np.asarray(out[1]), np.cumsum(np.arange(8.0)))


def test_without_a_compile_cache_it_is_plain_jit(monkeypatch, tmp_path):
    monkeypatch.setattr(exported, "store", lambda: None)
    TRACES.clear()
    kernel = Kernel("toy", lambda *a: _toy(*a))  # a new function: JAX's jit cache has none
    kernel(*_args())
    out = kernel(*_args())
    assert not list(tmp_path.iterdir()) and TRACES == ["traced"]  # jitted: traced once
    np.testing.assert_array_equal(np.asarray(out[1]), np.cumsum(np.arange(8.0)))


def test_a_store_that_cannot_be_written_still_runs(monkeypatch, tmp_path):
    _new_process(monkeypatch)
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    monkeypatch.setattr(exported, "store", lambda: blocked / "exported")
    out = Kernel("toy", _toy)(*_args())
    np.testing.assert_array_equal(np.asarray(out[1]), np.cumsum(np.arange(8.0)))


def test_traced_callers_get_the_function_itself(store):
    a, tree = _args()
    grad = jax.grad(lambda s: Kernel("toy", _toy)(a * s, tree)[0].sum())(2.0)
    assert float(grad) == pytest.approx(float((a * tree["x"]).sum()))  # d/ds of s*a*x summed
    assert not list(store.iterdir())


def test_the_source_hash_covers_the_model():
    from pathlib import Path

    import dse.model.system_solve as solve

    digest = exported.source_hash()
    assert len(digest) == 64 and Path(solve.__file__).is_relative_to(exported._PACKAGE)
