"""Dependencies point one way: the domain imports no framework and no outer layer."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "workflow": {"celery", "kombu", "jinja2", "fastapi", "letters", "tasks", "cli", "config"},
    "letters": {"celery", "kombu", "tasks", "cli", "config"},
    "tasks": {"cli"},
}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


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
