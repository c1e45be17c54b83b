"""Dependencies point one way: entry points (CLI, tasks, web) → services → messaging, letters and
workflow; the domain imports no framework and no outer layer; nothing imports in a circle."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("workflow", "letters", "messaging", "services", "tasks", "cli", "config", "migrations", "web")
HTTP = {"fastapi", "starlette", "httpx", "requests", "urllib3", "notifications_python_client", "smtplib"}
FORBIDDEN = {
    "workflow": {
        *("celery", "kombu", "jinja2"),
        *HTTP,
        *("letters", "messaging", "services", "tasks", "cli", "config", "web"),
    },
    "letters": {"celery", "kombu", "messaging", "services", "tasks", "cli", "config", "web"},
    "messaging": {"celery", "kombu", "services", "tasks", "cli", "config", "web"},
    "services": {"celery", "kombu", "tasks", "cli", "web", "fastapi", "starlette"},
    "tasks": {"cli", "sqlalchemy", "workflow", "messaging", "letters", "web"},
    "cli": {"sqlalchemy", "tasks"},
    "web": {"sqlalchemy", "celery", "kombu", "tasks", "cli", "messaging", "letters"},
}
# The composition point wires every part together; it is the one module allowed to see them all.
COMPOSITION = "config.wiring"


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "versions" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _runtime_imports(path: Path) -> set[str]:
    """Every module name imported when the file runs (not those under ``if TYPE_CHECKING:``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for n in ast.walk(node))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _imports(path: Path) -> set[str]:
    return {name.split(".")[0] for name in _runtime_imports(path)}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_inward(package: str) -> None:
    offenders = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in (ROOT / package).rglob("*.py")
        for name in _imports(path) & FORBIDDEN[package]
    }
    assert not offenders, sorted(offenders)


def test_the_check_sees_imports() -> None:
    assert "celery" in _imports(ROOT / "tasks" / "jobs.py")
    assert "workflow.errors.CaseloopError" in _runtime_imports(ROOT / "cli" / "app.py")


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _module_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        graph[name] = {m for m in _runtime_imports(path) if m in modules and m != name}
    return graph


def test_no_module_imports_itself_in_a_circle() -> None:
    assert _cycles(_module_graph()) == []


def test_no_package_depends_on_another_in_a_circle() -> None:
    """Packages form layers (the composition point aside, which stands above them all)."""
    packages: dict[str, set[str]] = defaultdict(set)
    for module, imported in _module_graph().items():
        source = COMPOSITION if module == COMPOSITION else module.split(".")[0]
        for target in imported:
            if target == COMPOSITION:
                packages[source].add(COMPOSITION)
            elif target.split(".")[0] != source:
                packages[source].add(target.split(".")[0])
    assert _cycles(dict(packages)) == []


def test_the_cycle_check_finds_a_circle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


SESSION_CALLS = {"transaction", "session", "reading", "writing", "begin", "execute", "scalar", "scalars"}


@pytest.mark.parametrize("package", ["cli", "tasks", "web"])
def test_entry_points_call_services_and_never_open_a_database_session(package: str) -> None:
    offenders = []
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            call = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            if call and node.func.attr in SESSION_CALLS:  # type: ignore[attr-defined]
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} calls .{node.func.attr}()")
    assert offenders == []
