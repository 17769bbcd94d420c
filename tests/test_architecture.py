"""The package's shape, as the README's module map draws it: no import cycle, and the
rooms by process kept apart (the worker side never reaches for the controller's)."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "pytest_batchgen"


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imports_of(path: Path, modules: set[str], package: Path = PACKAGE) -> set[str]:
    """Every package module this one imports when it runs, at the top or inside a
    function, resolved as Python resolves it: relative imports from the module's own
    package, and `from pkg import name` as the submodule `pkg.name` when there is one.
    What it names only for type checkers does not count."""
    module = module_name(path, package)
    home = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom):
            if node.level:  # `from ..controller import summary`
                parts = home.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return (found & modules) - {module}


def graph_of(package: Path) -> dict[str, set[str]]:
    """Each module of the package and the package modules it imports."""
    paths = list(package.rglob("*.py"))
    modules = {module_name(path, package) for path in paths}
    return {module_name(path, package): imports_of(path, modules, package) for path in paths}


GRAPH = graph_of(PACKAGE)


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


ROOM_RULES = [("worker", "controller"), ("controller", "worker"),
              ("shared", "controller"), ("shared", "worker"), ("shared", "glue")]


def crossings(graph: dict[str, set[str]], side: str, forbidden: str) -> list[str]:
    return sorted(f"{module} imports {target}" for module, targets in graph.items()
                  if room(module) == side for target in targets if room(target) == forbidden)


@pytest.mark.parametrize(("side", "forbidden"), ROOM_RULES)
def test_rooms_by_process(side: str, forbidden: str) -> None:
    assert crossings(GRAPH, side, forbidden) == []


@pytest.mark.parametrize(("module", "planted", "caught"), [
    # A relative import inside a function of the worker side.
    ("worker/audit.py", "def later():\n    from ..controller import summary\n",
     "pytest_batchgen.worker.audit imports pytest_batchgen.controller.summary"),
    # The controller's package, imported by name from the package.
    ("worker/diff.py", "from pytest_batchgen import controller\n",
     "pytest_batchgen.worker.diff imports pytest_batchgen.controller"),
    # A shared module reaching for the glue, relatively.
    ("contract.py", "from . import session\n",
     "pytest_batchgen.contract imports pytest_batchgen.session"),
])
def test_a_planted_forbidden_import_is_caught(tmp_path: Path, module: str, planted: str,
                                              caught: str) -> None:
    copy = tmp_path / "pytest_batchgen"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    with (copy / module).open("a", encoding="utf-8") as source:
        source.write("\n\n" + planted)
    graph = graph_of(copy)
    assert any(caught in crossings(graph, side, forbidden) for side, forbidden in ROOM_RULES)


def test_backends_take_typed_options_not_the_run_settings() -> None:
    readers = sorted(module for module, targets in GRAPH.items()
                     if module.split(".")[1:2] in (["store"], ["authors"])
                     and "pytest_batchgen.settings" in targets)
    assert readers == []
