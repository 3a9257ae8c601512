"""The import graph: the library never imports Prefect, and no two modules import each other.

Imports are read from the source (an AST walk), lazy ones inside functions included: a cycle
through a function-level import is still a cycle (``cli`` ↔ ``demo`` was one). The subprocess
test imports every ``sodtrack`` module for real and looks at ``sys.modules``.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SHELL_IMPORTS = {"sodtrack.cli": {"tasks.watch", "tasks.admin", "tasks.automations"}}
"""The CLI is a shell like ``flows/`` and ``tasks/``: ``watch`` and ``prefect …`` import the
Prefect side (where the Prefect API is; set-up of blocks, schedules and automations) inside
the command. No other library module imports the shell."""


def _modules(folder: Path, prefix: str) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*.py")):
        parts = list(path.relative_to(folder).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join([prefix, *parts] if prefix else parts)] = path
    return found


def _imported(module: str, path: Path) -> Iterable[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, base] if base else parts)
            yield base
            yield from (f"{base}.{a.name}" for a in node.names)


def _graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for name in _imported(module, path):
            target = resolve(name)
            # a module importing its own package (``from sodtrack import x``) is not an edge
            if target and target != module and not module.startswith(f"{target}."):
                graph[module].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize(("folder", "prefix"), [("sodtrack", "sodtrack"), ("bench", "")])
def test_no_import_cycles(folder: str, prefix: str) -> None:
    modules = _modules(ROOT / folder, prefix)
    assert len(modules) > 5
    assert _cycles(_graph(modules)) == []


BULKLOAD_LAYERS: dict[str, int] = {
    "columns": 0,
    "issues": 0,
    "outcomes": 0,
    "messages": 0,
    "neutralise": 0,
    "reading": 1,
    "engine": 2,
    "answers": 3,
    "run": 4,
    "inbox": 5,
    "template": 5,
    "synth": 5,
}
"""The layers of ``sodtrack.bulkload`` (its package docstring's table): a module imports from
its own layer and the layers above it (smaller numbers), never from one below."""


def _bulkload_layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[:2] != ["sodtrack", "bulkload"] or len(parts) < 3:
        return None
    return BULKLOAD_LAYERS[parts[2]]


def test_every_bulkload_module_has_a_layer() -> None:
    modules = _modules(ROOT / "sodtrack" / "bulkload", "sodtrack.bulkload")
    tops = {m.split(".")[2] for m in modules if m.count(".") >= 2}
    assert tops == set(BULKLOAD_LAYERS)


def _downward(graph: dict[str, set[str]]) -> list[str]:
    """Each import of a ``sodtrack.bulkload`` module from a layer below its own."""
    found = []
    for module, targets in graph.items():
        mine = _bulkload_layer(module)
        if mine is None:
            continue
        for target in sorted(targets):
            theirs = _bulkload_layer(target)
            if theirs is not None and theirs > mine:
                found.append(f"{module} (layer {mine}) imports {target} (layer {theirs})")
    return found


def test_the_bulkload_layers_import_only_upwards() -> None:
    assert _downward(_graph(_modules(ROOT / "sodtrack", "sodtrack"))) == []


def test_the_layer_check_finds_a_downward_import() -> None:
    graph = {
        "sodtrack.bulkload.reading.values": {"sodtrack.bulkload.answers.results"},
        "sodtrack.bulkload.engine.plan": {"sodtrack.bulkload.reading.rows", "sodtrack.db"},
    }
    assert _downward(graph) == [
        "sodtrack.bulkload.reading.values (layer 1) imports sodtrack.bulkload.answers.results "
        "(layer 3)"
    ]


def test_the_library_source_never_imports_prefect_or_the_shell() -> None:
    shell = ("prefect", "flows", "tasks")
    offending = {}
    for module, path in _modules(ROOT / "sodtrack", "sodtrack").items():
        names = {n for n in _imported(module, path) if n.split(".")[0] in shell}
        for allowed in SHELL_IMPORTS.get(module, ()):
            names -= {allowed, allowed.rpartition(".")[0]}  # ``from tasks import watch``
        if names:
            offending[module] = sorted(names)
    assert offending == {}


def test_importing_every_library_module_loads_no_prefect() -> None:
    names = [m for m in _modules(ROOT / "sodtrack", "sodtrack") if not m.endswith("__main__")]
    code = (
        "import importlib, json, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('prefect', 'flows', 'tasks'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    assert json.loads(out.strip().splitlines()[-1]) == []
