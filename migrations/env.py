"""Alembic environment: runs migrations online against the URL caseloop passes in."""

from __future__ import annotations

from alembic import context

import workflow.access
import workflow.audit_records
import workflow.heartbeats
import workflow.model
import workflow.reminders
import workflow.staff  # noqa: F401
from workflow.db import Base, make_engine

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("caseloop runs migrations online only: use `caseloop db upgrade`")
run_migrations_online()
