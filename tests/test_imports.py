"""The package's import graph has no cycles: data flows one way.

Every import counts, also those inside functions (a deferred import is still a
dependency). ``from testtime.x import y`` is an edge to ``testtime.x.y`` where that
is a module, else to ``testtime.x``. A package's ``__init__`` that imports its own
modules (to register them) is the package; its modules must not import it back.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "testtime"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from . import x
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def layer_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Modules folded into their layer, testtime's first-level package or module (testtime.verifiers)."""
    def layer(name: str) -> str:
        return ".".join(name.split(".")[:2])

    out: dict[str, set[str]] = {layer(n): set() for n in graph}
    for name, targets in graph.items():
        out[layer(name)] |= {layer(t) for t in targets} - {layer(name)}
    return out


def test_the_import_graph_has_no_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_layers_import_one_way():
    """No cycle between testtime's packages either (verifiers -> learn -> strategies -> verifiers was one)."""
    cycle = find_cycle(layer_graph(import_graph()))
    assert cycle is None, "import cycle between layers: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("module, imports", [("testtime.strategies.majority", "testtime.strategies.parallel"),
                                             ("testtime.cli.run", "testtime.generators")])
def test_the_graph_sees_real_imports(module, imports):
    assert imports in import_graph()[module]
