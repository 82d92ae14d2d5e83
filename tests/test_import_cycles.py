"""No module of ``mtl_sched`` imports itself back, through any chain of imports.

The import graph is read from the source with `ast` (nothing is imported but the packages'
locations). Every import statement counts: those under ``if TYPE_CHECKING:`` (a type-only import
still ties the two modules' designs together) and those deferred into a function (deferring an
import hides a cycle from the interpreter, not from the design).
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Iterator
from pathlib import Path

ROOT_PACKAGE = "mtl_sched"


class ModuleLocator:
    """Where the source of each module of the project lives.

    A package's children are looked for in its folders; a package mapped to another folder
    (``mtl_sched.envs`` lives in ``envs/``) is found through the import system.
    """

    def __init__(self, root: str) -> None:
        self.root = root
        self._found: dict[str, Path | None] = {}

    def source(self, name: str) -> Path | None:
        """The ``.py`` file of module ``name`` (a package's ``__init__.py``); ``None`` when it is
        not a module of the project."""
        if name != self.root and not name.startswith(f"{self.root}."):
            return None
        if name not in self._found:
            self._found[name] = self._search(name)
        return self._found[name]

    def is_package(self, name: str) -> bool:
        """Whether module ``name`` is a package of the project."""
        path = self.source(name)
        return path is not None and path.name == "__init__.py"

    def children(self, name: str) -> Iterator[str]:
        """The modules and packages directly inside package ``name``."""
        path = self.source(name)
        assert path is not None
        for entry in sorted(path.parent.iterdir()):
            if entry.suffix == ".py" and entry.name != "__init__.py":
                yield f"{name}.{entry.stem}"
            elif (entry / "__init__.py").is_file():
                yield f"{name}.{entry.name}"

    def _search(self, name: str) -> Path | None:
        parent, _, child = name.rpartition(".")
        if parent and self.is_package(parent):
            folder = self.source(parent).parent  # type: ignore[union-attr]
            for candidate in (folder / f"{child}.py", folder / child / "__init__.py"):
                if candidate.is_file():
                    return candidate
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            return None
        if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
            return None
        return Path(spec.origin)


def _import_statements(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement of a module, wherever it stands."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node


def _imported_modules(
    module: str, is_package: bool, node: ast.Import | ast.ImportFrom, locator: ModuleLocator
) -> Iterator[str]:
    """The modules an import statement binds: ``from a import b`` imports module ``a.b`` when
    there is one, else module ``a`` (whose attribute ``b`` is)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:
        anchor = module.split(".")
        anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
        base = ".".join([*anchor, base] if base else anchor)
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        yield submodule if alias.name != "*" and locator.source(submodule) else base


def import_graph(root: str = ROOT_PACKAGE) -> dict[str, set[str]]:
    """Module -> the project modules it imports at module level, over every module of ``root``.

    :param root: the top package; a package it imports that lives elsewhere (a mapped folder)
        is followed too.
    """
    locator = ModuleLocator(root)
    graph: dict[str, set[str]] = {}
    pending = [root]
    while pending:
        module = pending.pop()
        if module in graph:
            continue
        path = locator.source(module)
        assert path is not None, module
        is_package = locator.is_package(module)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets: set[str] = set()
        for node in _import_statements(tree):
            for name in _imported_modules(module, is_package, node, locator):
                if locator.source(name) is not None:
                    targets.add(name)
        targets.discard(module)
        graph[module] = targets
        pending.extend(targets)
        if is_package:
            pending.extend(locator.children(module))
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan), each as
    the modules along it, the first repeated at the end.

    :param graph: module -> modules it imports.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_cycle_through(component, graph) for component in components]


def _cycle_through(component: set[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest cycle through the first module (by name) of a strongly connected component."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & component):
                if target == start:
                    return [*paths[node], start]
                if target not in paths:
                    paths[target] = [*paths[node], target]
                    following.append(target)
        frontier = following
    raise AssertionError(f"{sorted(component)} is not strongly connected")


def _described(cycles: list[list[str]]) -> str:
    return "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_find_cycles_on_a_known_graph():
    graph = {
        "a": {"b"},
        "b": {"c"},
        "c": {"a", "d"},
        "d": set(),
        "e": {"f"},
        "f": {"e"},
    }
    assert sorted(find_cycles(graph)) == [["a", "b", "c", "a"], ["e", "f", "e"]]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_import_graph_follows_every_kind_of_import(tmp_path, monkeypatch):
    package = tmp_path / "cyclepkg"
    (package / "inner").mkdir(parents=True)
    (package / "__init__.py").write_text("from cyclepkg.inner import helper\n")
    (package / "inner" / "__init__.py").write_text("import json\n")
    (package / "inner" / "helper.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..model import Model\n"
    )
    (package / "model.py").write_text(
        "from . import inner\n\n\ndef build():\n    from cyclepkg.inner import helper\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = import_graph("cyclepkg")
    assert graph == {
        "cyclepkg": {"cyclepkg.inner.helper"},
        "cyclepkg.inner": set(),
        "cyclepkg.inner.helper": {"cyclepkg.model"},
        "cyclepkg.model": {"cyclepkg.inner", "cyclepkg.inner.helper"},
    }
    assert find_cycles(graph) == [
        ["cyclepkg.inner.helper", "cyclepkg.model", "cyclepkg.inner.helper"]
    ]


def test_no_import_cycles():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles:\n" + _described(cycles)
