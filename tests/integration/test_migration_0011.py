"""Migration 0011 (the audit sample's tables) upgrades, matches the models, and downgrades."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

import workflow.audit_records  # noqa: F401  (the tables compared)
from migrations import alembic_config, upgrade
from workflow.db import Base, make_engine

AUDIT_TABLES = {"audit_samples", "audit_findings"}


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _audit_differences(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            found = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()

    def touches_audit(diff: object) -> bool:
        return any(name in repr(diff) for name in AUDIT_TABLES)

    return [d for d in found if touches_audit(d)]


def test_0011_upgrades_matches_the_models_and_downgrades(database_url: str) -> None:
    upgrade(database_url)
    assert _tables(database_url) >= AUDIT_TABLES
    assert _audit_differences(database_url) == []
    command.downgrade(alembic_config(database_url), "0010")
    assert not AUDIT_TABLES & _tables(database_url)
    upgrade(database_url)
    assert _tables(database_url) >= AUDIT_TABLES
