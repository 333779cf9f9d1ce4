"""The import graph follows the one direction data flows (docs/architecture.md):

    config -> catalog, workload -> model inputs -> model -> stack (evaluator) -> search -> report

Every import of ``dse`` code (module level or inside a function: both are dependencies) is read
from the source with ``ast``; a package may import only the packages below it in ``LAYERS``,
the model core imports nothing outside itself, and no two modules import each other through
any chain. ``import dse`` changes no global JAX setting (checked in a fresh interpreter).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import dse

ROOT = Path(dse.__file__).parent

# What each top-level part of dse may import besides itself. Utilities first; every entry
# names only parts listed above it, so the table itself is acyclic.
ALLOWED: dict[str, set[str]] = {
    "files": set(),
    "version": set(),
    "jax_config": set(),
    "progress": set(),
    "values": set(),  # the one number validator
    "exported": set(),  # compiled kernels kept on disk (jax.export), loaded without tracing
    "model": set(),  # the pure core: typed inputs in, metrics out
    "catalog": {
        "model",
        "files",
        "jax_config",
        "values",
    },  # conf/ YAML -> the model's input pytrees
    "workload": {"model", "files", "jax_config", "values"},  # sessions, traces -> WorkloadProfile
    "scenarios": {"catalog", "model", "values"},  # table rows -> Design pytrees
    "calibration": {"scenarios", "catalog", "model", "files", "jax_config"},
    "stack": {
        "calibration",
        "catalog",
        "workload",
        "model",
        "files",
        "values",
        "exported",
    },  # the evaluator of systems
    "predict": {"stack", "calibration", "scenarios", "catalog", "model", "values"},
    "search": {
        "stack",
        "calibration",
        "catalog",
        "workload",
        "model",
        "files",
        "progress",
        "values",
        "jax_config",
    },  # jax_config: Dask workers are configured like the CLI's process
    "report": {"search", "model", "files", "version"},  # reads result files
    "cli": {"*"},  # the edge: owns JAX settings, progress and the report call
    "__init__": {"*"},  # the public API re-exports
}


def _module(path: Path) -> str:
    parts = ["dse", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module(p): p for p in ROOT.rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The dse modules ``name`` imports (``from pkg import sub`` counts as importing ``sub``)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "dse"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "dse":
                continue
            subs = {f"{target}.{a.name}" for a in node.names} & known
            out |= subs or {target}
    return out - {name}


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {m: _imports(m, p, known) for m, p in mods.items()}


def test_every_import_names_a_module_that_exists():
    """A lazy import of a moved module only fails when its function runs: catch it here."""
    graph = _graph()
    missing = sorted(f"{m} -> {t}" for m, ts in graph.items() for t in ts if t not in graph)
    assert not missing


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_import_follows_the_layers():
    bad = []
    for src, targets in _graph().items():
        allowed = ALLOWED.get(_part(src))
        assert allowed is not None, f"{src}: a new top-level part; give it a row in ALLOWED"
        for t in targets:
            if _part(t) != _part(src) and "*" not in allowed and _part(t) not in allowed:
                bad.append(f"{src} -> {t}")
    assert not bad, "imports against the flow:\n" + "\n".join(sorted(bad))


def test_the_model_core_imports_nothing_outside_itself():
    graph = _graph()
    outside = sorted(f"{m} -> {t}" for m in graph if _part(m) == "model"
                     for t in graph[m] if _part(t) != "model")  # fmt: skip
    assert not outside


def test_no_import_cycles():
    """No chain of imports leads from a module back to itself (Tarjan's strongly connected
    components; edges into a module's own package ``__init__`` are re-exports and skipped)."""
    graph = _graph()
    for m, ts in graph.items():
        graph[m] = {t for t in ts if t in graph and not m.startswith(t + ".")}
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_layer_table_is_itself_acyclic():
    order = list(ALLOWED)
    for i, part in enumerate(order):
        assert ALLOWED[part] <= set(order[:i]) | {"*"}, part


def test_importing_dse_changes_no_global_jax_setting():
    code = (
        "import jax; before = (jax.config.jax_enable_x64, jax.config.jax_compilation_cache_dir)\n"
        "import dse, dse.cli, dse.search, dse.report, dse.predict\n"
        "after = (jax.config.jax_enable_x64, jax.config.jax_compilation_cache_dir)\n"
        "assert before == after, (before, after)\n"
        "dse.load_catalog()\n"
        "assert jax.config.jax_enable_x64  # the entry points turn float64 on\n"
    )
    env = {"DSE_JAX_CACHE": "off", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
