"""The composition point: real adapters built from settings, for the CLI, workers and tests."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import inspect, text

from config.policy import load_policy
from config.settings import Settings
from migrations import current_head
from workflow.clocks import Rulebook
from workflow.db import Database
from workflow.errors import CaseloopError


class SchemaNotReady(CaseloopError):
    """The database has not been migrated to this version of caseloop."""


@dataclass
class Runtime:
    settings: Settings
    db: Database
    book: Rulebook

    def check_schema(self) -> None:
        head = current_head()
        with self.db.engine.connect() as conn:
            found = None
            if inspect(conn).has_table("alembic_version"):
                found = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        if found != head:
            raise SchemaNotReady(
                f"the database is at schema {found or 'none'}, caseloop needs {head}: "
                "run `caseloop db upgrade`"
            )

    def close(self) -> None:
        self.db.dispose()


def build_runtime(settings: Settings) -> Runtime:
    return Runtime(
        settings=settings,
        db=Database(settings.database_url),
        book=Rulebook.build(load_policy(settings), settings.zone),
    )
