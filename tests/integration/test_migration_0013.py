"""Migration 0013 (the queues' partial indexes) upgrades, matches the models, and downgrades;
the indexes' predicates still name the live clock statuses and the open case states."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from migrations import alembic_config, upgrade
from workflow import queue_indexes
from workflow.clocks import ACTIVE
from workflow.db import Base, make_engine
from workflow.lifecycle import OPEN_STATES

QUEUE_INDEXES = {("clocks", "ix_clocks_live"), ("cases", "ix_cases_open_team")}


def _indexes(url: str) -> set[tuple[str, str]]:
    engine = make_engine(url)
    try:
        found = inspect(engine)
        return {(table, ix["name"]) for table in ("clocks", "cases") for ix in found.get_indexes(table)}
    finally:
        engine.dispose()


def _index_differences(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection)
            found = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    names = {name for _, name in QUEUE_INDEXES}
    return [d for d in found if any(name in repr(d) for name in names)]


def test_0013_upgrades_matches_the_models_and_downgrades(database_url: str) -> None:
    upgrade(database_url)
    assert _indexes(database_url) >= QUEUE_INDEXES
    assert _index_differences(database_url) == []
    command.downgrade(alembic_config(database_url), "0012")
    assert not QUEUE_INDEXES & _indexes(database_url)
    upgrade(database_url)
    assert _indexes(database_url) >= QUEUE_INDEXES


def test_the_predicates_name_the_live_clocks_and_the_open_cases() -> None:
    assert set(queue_indexes.LIVE_CLOCK_STATUSES) == {s.value for s in ACTIVE}
    assert set(queue_indexes.OPEN_CASE_STATES) == {s.value for s in OPEN_STATES}
