"""The package's shape, as the README's module map draws it: no import cycle, and the
rooms by process kept apart (the worker side never reaches for the controller's)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "pytest_batchgen"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imports_of(path: Path) -> set[str]:
    """Every package module this one imports when it runs, at the top or inside a
    function; what it names only for type checkers does not count."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {name for name in found if name.split(".")[0] == "pytest_batchgen"}


GRAPH = {module_name(path): imports_of(path) for path in PACKAGE.rglob("*.py")}


def room(module: str) -> str:
    """controller, worker, glue (wires both) or shared (either side may import it)."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in ("controller", "worker"):
        return parts[1]
    if module in ("pytest_batchgen.session", "pytest_batchgen.plugin",
                  "pytest_batchgen.__main__"):
        return "glue"
    return "shared"


def test_the_graph_covers_the_package() -> None:
    assert "pytest_batchgen.worker.runner" in GRAPH
    assert "pytest_batchgen.controller.reporter" in GRAPH
    assert all(target in GRAPH for targets in GRAPH.values() for target in targets)


def test_no_import_cycle() -> None:
    done: set[str] = set()

    def walk(module: str, path: list[str]) -> None:
        if module in path:
            cycle = " -> ".join([*path[path.index(module):], module])
            pytest.fail(f"import cycle: {cycle}")
        if module in done:
            return
        for target in sorted(GRAPH[module]):
            walk(target, [*path, module])
        done.add(module)

    for module in sorted(GRAPH):
        walk(module, [])


@pytest.mark.parametrize(("side", "forbidden"), [
    ("worker", "controller"), ("controller", "worker"),
    ("shared", "controller"), ("shared", "worker"), ("shared", "glue"),
])
def test_rooms_by_process(side: str, forbidden: str) -> None:
    crossings = sorted(f"{module} imports {target}" for module, targets in GRAPH.items()
                       if room(module) == side for target in targets
                       if room(target) == forbidden)
    assert crossings == []


def test_backends_take_typed_options_not_the_run_settings() -> None:
    readers = sorted(module for module, targets in GRAPH.items()
                     if module.split(".")[1:2] in (["store"], ["authors"])
                     and "pytest_batchgen.settings" in targets)
    assert readers == []
