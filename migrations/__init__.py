"""Alembic migrations for caseloop's schema, runnable from code (``caseloop db upgrade``).

Every command checks the database is at :func:`current_head` before it starts, so that check is
kept cheap: it reads the revision files' two assignments instead of importing Alembic (a third
of a second), and asks Alembic only when the history is not one straight line.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config

HERE = Path(__file__).resolve().parent


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def alembic_head() -> str | None:
    """The head as Alembic works it out (merges, branches and all)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def _assignments(path: Path) -> dict[str, object]:
    found: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8"), filename=str(path)).body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                    try:
                        found[target.id] = ast.literal_eval(node.value) if node.value else None
                    except ValueError:
                        found[target.id] = ...  # not a literal: leave it to Alembic
    return found


def current_head() -> str | None:
    """The revision the schema must be at for this version of caseloop."""
    revisions: set[str] = set()
    downs: set[str] = set()
    for path in sorted((HERE / "versions").glob("*.py")):
        found = _assignments(path)
        revision, down = found.get("revision"), found.get("down_revision")
        if not isinstance(revision, str) or not (down is None or isinstance(down, str)):
            return alembic_head()  # a merge (a tuple of parents) or a computed name
        revisions.add(revision)
        if down is not None:
            downs.add(down)
    heads = revisions - downs
    if len(heads) != 1 or not downs <= revisions:
        return alembic_head()
    return heads.pop()
