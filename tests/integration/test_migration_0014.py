"""Migration 0014 (each clock carries its case's team; the counting clocks indexed by due date
and by team) backfills the team of the clocks already there, matches the models, and downgrades;
the indexes' predicate still names the statuses the queues count."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from migrations import alembic_config, upgrade
from services import team_queue
from workflow import queue_indexes
from workflow.db import Base, make_engine

INDEXES = {"ix_clocks_counting_due", "ix_clocks_counting_team", "ix_clocks_live"}

_CASE = text(
    "INSERT INTO cases (id, ref, state, episode, team, referral_at, referral_source, assessment_started, "
    "assessment_completed, factors, flags, child, referrer, household, updated_at, fact_times) "
    "VALUES (:id, :ref, 'referral', 1, :team, '2026-11-02 09:00:00', 'SCH', false, false, '[]', '[]', "
    "'{}', '{}', '[]', '2026-11-02 09:00:00', '{}')"
)
_CLOCK = text(
    "INSERT INTO clocks (id, case_id, episode, name, seq, started_at, counted_from, due_on, status, "
    "paused_days, policy_version, calendar_version, updated_at) VALUES (:id, :case_id, 1, :name, 1, "
    "'2026-11-02 09:00:00', '2026-11-02', '2026-11-03', :status, 0, 'p', 'c', '2026-11-02 09:00:00')"
)


def _clocks(url: str) -> tuple[set[str], list[tuple[int, str]], bool]:
    engine = make_engine(url)
    try:
        found = inspect(engine)
        names = {ix["name"] for ix in found.get_indexes("clocks")}
        nullable = next(c["nullable"] for c in found.get_columns("clocks") if c["name"] == "team")
        with engine.connect() as conn:
            teams = [(i, t) for i, t in conn.execute(text("SELECT id, team FROM clocks ORDER BY id"))]
        return names, teams, nullable
    finally:
        engine.dispose()


def _differences(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            found = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()
    return [
        d for d in found if "clocks" in repr(d) and ("team" in repr(d) or any(n in repr(d) for n in INDEXES))
    ]


def test_0014_backfills_the_clocks_teams_matches_the_models_and_downgrades(database_url: str) -> None:
    upgrade(database_url, "0013")
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            for case_id, team in ((1, "north"), (2, "south")):
                conn.execute(_CASE, {"id": case_id, "ref": f"M-{case_id}", "team": team})
            for clock_id, case_id, name, status in (
                (1, 1, "decision", "running"),
                (2, 1, "assessment", "met"),
                (3, 2, "decision", "breached"),
            ):
                conn.execute(_CLOCK, {"id": clock_id, "case_id": case_id, "name": name, "status": status})
    finally:
        engine.dispose()
    upgrade(database_url)
    names, teams, nullable = _clocks(database_url)
    assert names >= INDEXES
    assert teams == [(1, "north"), (2, "north"), (3, "south")]  # every clock, stopped ones too
    assert not nullable
    assert _differences(database_url) == []
    command.downgrade(alembic_config(database_url), "0013")
    engine = make_engine(database_url)
    try:
        found = inspect(engine)
        assert "team" not in {c["name"] for c in found.get_columns("clocks")}
        assert {ix["name"] for ix in found.get_indexes("clocks")} & INDEXES == {"ix_clocks_live"}
    finally:
        engine.dispose()
    upgrade(database_url)
    assert _clocks(database_url)[1] == [(1, "north"), (2, "north"), (3, "south")]


def test_the_predicate_names_the_statuses_the_queues_count() -> None:
    assert set(queue_indexes.COUNTING_CLOCK_STATUSES) == set(team_queue.COUNTING)
