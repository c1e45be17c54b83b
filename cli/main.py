"""``caseloop``: the command line every later part, test and operator drives caseloop through.

The application and its groups are in :mod:`cli.app`; importing the command modules here
registers their commands on it.
"""

from __future__ import annotations

from cli import engine_cli, letters_cli, processes, staff_outbox, tokens_cli, users_cli
from cli.app import app

__all__ = ["app", "engine_cli", "letters_cli", "processes", "run", "staff_outbox", "tokens_cli", "users_cli"]


def run() -> None:
    app()


if __name__ == "__main__":
    run()
