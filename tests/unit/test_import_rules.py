"""The import rules of the layout: which package may import which, and no cycles."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("gateway", "commands", "projections", "queries")
# What the read-model builders may use of the write side: events and the ledger's reader.
PROJECTION_ALLOWED = ("commands.events", "commands.store.ledger.reader", "commands.store.driver")
# Process entry points compose everything, like any composition root.
ENTRY_POINTS = {"projections.__main__"}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Modules imported at run time (imports under ``if TYPE_CHECKING:`` are types only)."""
    found: set[str] = set()

    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            if "TYPE_CHECKING" in ast.unparse(node.test):
                for child in node.orelse:
                    self.visit(child)
                return
            self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            for alias in node.names:
                if (target := owner(alias.name)) is not None:
                    found.add(target)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.level or node.module is None:
                return
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if (target := owner(full if full in modules else node.module)) is not None:
                    found.add(target)

    Visitor().visit(ast.parse(path.read_text()))
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def _allowed(module: str, target: str) -> bool:
    top, other = module.split(".")[0], target.split(".")[0]
    if top == other or module in ENTRY_POINTS:
        return True
    if top in ("commands", "queries"):
        return other not in ("gateway", "projections", "commands", "queries")
    if top == "projections":
        return other == "commands" and target.startswith(PROJECTION_ALLOWED)
    return True  # the gateway composes everything


def test_packages_import_only_what_the_layout_allows() -> None:
    broken = [
        f"{module} -> {target}"
        for module, targets in _graph().items()
        for target in targets
        if not _allowed(module, target)
    ]
    assert broken == []


def test_no_import_cycles() -> None:
    graph = _graph()
    cycles: list[list[str]] = []
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert cycles == []
