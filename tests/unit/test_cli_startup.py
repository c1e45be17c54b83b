"""The CLI starts without the heavy libraries: what a command does not use, it does not import.

Each check runs the CLI in a fresh interpreter and lists the modules loaded when it finished, so
it tests what is imported (which fails the moment someone adds a top-level import of WeasyPrint
to a command module), not how long it took (which a busy machine would make flaky).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cli.tokens_cli import SCOPES
from services.actors import Scope

HEAVY = ("weasyprint", "notifications_python_client", "celery", "kombu", "pypdf", "fastapi", "uvicorn")
# Loaded by commands that open the database, never by one that only prints its help.
DATABASE = ("sqlalchemy", "alembic", "jinja2", "pydantic_settings")

_PROBE = """
import json, sys
from cli.main import app
try:
    app(args=sys.argv[1:], prog_name="caseloop")
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""


def _loaded(*args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, timeout=120, check=True
    )
    last = done.stdout.strip().splitlines()[-1]
    return {name.split(".")[0] for name in json.loads(last)}


def test_the_help_imports_no_heavy_library() -> None:
    loaded = _loaded("--help")
    assert "cli" in loaded  # the probe really ran the CLI
    assert loaded.isdisjoint(HEAVY + DATABASE), sorted(loaded & set(HEAVY + DATABASE))


@pytest.mark.parametrize(
    "command", [("events", "import", "--help"), ("tokens", "create", "--help"), ("run", "--help")]
)
def test_a_commands_help_imports_no_heavy_library(command: tuple[str, ...]) -> None:
    loaded = _loaded(*command)
    assert loaded.isdisjoint(HEAVY + DATABASE), sorted(loaded & set(HEAVY + DATABASE))


def test_a_command_that_draws_a_diagram_loads_no_sending_library() -> None:
    loaded = _loaded("workflow", "diagram")
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


def test_the_scopes_in_the_help_are_the_scopes_a_token_may_have() -> None:
    assert tuple(s.value for s in Scope) == SCOPES
