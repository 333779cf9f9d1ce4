"""Compiled kernels that start without tracing: ``jax.export`` artifacts kept on disk.

Tracing dse's system model into a program costs a fresh process ~4-10 s for the sweep kernel and
~20 s for its Jacobian (2-core CPU), every run, even when JAX's persistent compile cache then
hands back the compiled executable. :class:`Kernel` wraps a jitted function: the first call for
a given input structure exports it (StableHLO, ``jax.export``) and writes the artifact; every
later process loads it and calls it without tracing the model. XLA's compile step is still
cached by JAX's compile cache.

An artifact is named by a hash of everything that can change the program: the kernel's name,
the source of every ``dse/**.py`` file, the JAX, jaxlib and Equinox versions, the x64 flag, the
backend, the input tree (structure and static fields) with every leaf's shape and dtype, and
the kernel's static settings and XLA options. A model change gives new names, so a stale
artifact is never used; one that fails to load (truncated, another JAX) is rebuilt and
overwritten. Where: next to JAX's compile cache (``<cache>-exported``, see
:func:`dse.configure`); without a compile cache nothing is written and kernels run as plain
``jit``; inside a caller's trace (``jax.grad``) the function is simply inlined. A process
loads each program once for all its kernels, and the first call of a program holds a file
lock, so two processes starting together compile it once.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path

import equinox as eqx
import jax
import jaxlib

_PACKAGE = Path(__file__).resolve().parent


@cache
def source_hash() -> str:
    """SHA-256 of every ``dse/**.py`` file (path and bytes): what the traced programs are."""
    digest = hashlib.sha256()
    for path in sorted(_PACKAGE.rglob("*.py")):
        digest.update(str(path.relative_to(_PACKAGE)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def store() -> Path | None:
    """The artifact folder: beside JAX's compile cache, or None when there is none."""
    cache_dir = jax.config.jax_compilation_cache_dir
    if not cache_dir:
        return None
    return Path(str(cache_dir).rstrip("/\\") + "-exported")


# Loaded programs by artifact key, shared by every Kernel of the process: a second ``Stack`` (or
# a test's) runs the program the first one loaded instead of loading it again from JAX's cache
# (~3 s each for the sweep program on a 2-core CPU). The key names the program exactly.
_LOADED: dict[str, Callable] = {}
_KEY_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()


@contextlib.contextmanager
def _process_lock(path: Path):
    """An exclusive lock on ``path`` across processes (``flock``, released if the holder dies);
    none where the platform or the folder does not allow one."""
    try:
        import fcntl

        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a")  # noqa: SIM115 -- closed below
    except (ImportError, OSError):
        yield
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        handle.close()  # releases the lock


class Kernel:
    """``fn`` (a function of pytrees returning a tuple of arrays), run from an exported
    artifact when one exists for the call's input structure, exported and written otherwise.
    ``static``: settings ``fn`` closes over (part of the artifact's name); ``compiler_options``:
    XLA options for compiling the loaded program (an exported program carries none)."""

    def __init__(
        self, name: str, fn: Callable, static: tuple = (), compiler_options: dict | None = None
    ):
        self.name, self.fn, self.static = name, fn, static
        self.compiler_options = compiler_options
        self._jit = jax.jit(fn, compiler_options=compiler_options)  # without a store

    def __call__(self, *args) -> tuple:
        leaves, treedef = jax.tree.flatten(args)
        if any(isinstance(x, jax.core.Tracer) for x in leaves):
            return tuple(self.fn(*args))  # inside a caller's trace (jax.grad, vmap): inlined
        if store() is None:
            return tuple(self._jit(*args))
        specs = [jax.ShapeDtypeStruct(jax.numpy.shape(x), jax.numpy.result_type(x)) for x in leaves]
        key = self._key(treedef, specs)
        with _LOCKS_LOCK:
            lock = _KEY_LOCKS.setdefault(key, threading.Lock())
        with lock:  # one thread exports a key; the others wait and reuse it
            if key in _LOADED:
                return tuple(_LOADED[key](*leaves))
            # The first call compiles (or loads from JAX's cache). Another process starting on
            # the same key at the same time (a second dse run, a test worker) waits for it and
            # then loads the compiled program instead of compiling it too.
            with _process_lock(store() / f"{self.name}-{key}.lock"):
                exported = self._load_or_export(key, treedef, specs)
                loaded = jax.jit(exported.call, compiler_options=self.compiler_options)
                out = tuple(loaded(*leaves))
            _LOADED[key] = loaded
            return out

    def _key(self, treedef, specs) -> str:
        digest = hashlib.sha256()
        for part in (
            self.name, source_hash(), jax.__version__, jaxlib.__version__, eqx.__version__,
            str(jax.config.jax_enable_x64), jax.default_backend(), str(treedef),
            str([(s.shape, str(s.dtype)) for s in specs]), repr(self.static),
            repr(sorted((self.compiler_options or {}).items())),
        ):  # fmt: skip
            digest.update(part.encode())
            digest.update(b"\0")
        return digest.hexdigest()[:32]

    def _load_or_export(self, key: str, treedef, specs) -> jax.export.Exported:
        path = store() / f"{self.name}-{key}.jaxexport"
        if path.is_file():
            try:
                return jax.export.deserialize(bytearray(path.read_bytes()))
            except Exception:  # noqa: BLE001 -- unreadable: rebuilt below and overwritten
                pass

        def flat(*leaves):
            return tuple(self.fn(*jax.tree.unflatten(treedef, leaves)))

        exported = jax.export.export(jax.jit(flat))(*specs)
        partial = path.with_suffix(f".{os.getpid()}.part")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial.write_bytes(exported.serialize())
            os.replace(partial, path)  # atomic: a reader never sees half a file
        except OSError:  # a read-only or full disk: this process still runs the program
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
        return exported


__all__ = ["Kernel", "source_hash", "store"]
