"""Migration 0015 (each clock carries its case's reference, each letter its episode; the indexes
the open loops and the overdue queue read) backfills both copies, matches the models, and
downgrades."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from messaging import open_loops
from migrations import alembic_config, upgrade
from workflow import queue_indexes
from workflow.db import Base, make_engine

INDEXES = {"ix_clocks_counting_due", "ix_clocks_live_duty", "ix_outbox_letters", "ix_outbox_not_gone"}

_CASE = text(
    "INSERT INTO cases (id, ref, state, episode, team, referral_at, referral_source, assessment_started, "
    "assessment_completed, factors, flags, child, referrer, household, updated_at, fact_times) "
    "VALUES (:id, :ref, 'referral', 1, 'north', '2026-11-02 09:00:00', 'SCH', false, false, '[]', '[]', "
    "'{}', '{}', '[]', '2026-11-02 09:00:00', '{}')"
)
_CLOCK = text(
    "INSERT INTO clocks (id, case_id, team, episode, name, seq, started_at, counted_from, due_on, status, "
    "paused_days, policy_version, calendar_version, updated_at) VALUES (:id, :case_id, 'north', 1, "
    ":name, 1, '2026-11-02 09:00:00', '2026-11-02', '2026-11-03', 'running', 0, 'p', 'c', "
    "'2026-11-02 09:00:00')"
)
_LETTER = text(
    "INSERT INTO outbox (id, idempotency_key, kind, case_id, recipient_role, recipient, address, channel, "
    "status, office_hours_only, attempts, unfinished_preparations, next_attempt_at, created_at, duty, "
    "payload) VALUES (:id, :key, 'letter', 1, 'referrer', 'referrer', 'r@example.org', 'email', 'queued', "
    "false, 0, 0, '2026-11-02 09:00:00', '2026-11-02 09:00:00', 'referrer_acknowledgement', :payload)"
)


def _copies(url: str) -> tuple[list[tuple[int, str]], list[tuple[int, int | None]], set[str], bool]:
    engine = make_engine(url)
    try:
        found = inspect(engine)
        names = {ix["name"] for ix in found.get_indexes("clocks")} | {
            ix["name"] for ix in found.get_indexes("outbox")
        }
        nullable = next(c["nullable"] for c in found.get_columns("clocks") if c["name"] == "case_ref")
        with engine.connect() as conn:
            refs = [(i, r) for i, r in conn.execute(text("SELECT id, case_ref FROM clocks ORDER BY id"))]
            episodes = [(i, e) for i, e in conn.execute(text("SELECT id, episode FROM outbox ORDER BY id"))]
        return refs, episodes, names, nullable
    finally:
        engine.dispose()


def _differences(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            found = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()
    return [d for d in found if "clocks" in repr(d) or "outbox" in repr(d)]


def test_0015_backfills_the_copies_matches_the_models_and_downgrades(database_url: str) -> None:
    upgrade(database_url, "0014")
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            for case_id in (1, 2):
                conn.execute(_CASE, {"id": case_id, "ref": f"M-{case_id}"})
            for clock_id, case_id, name in ((1, 1, "decision"), (2, 2, "decision"), (3, 2, "assessment")):
                conn.execute(_CLOCK, {"id": clock_id, "case_id": case_id, "name": name})
            conn.execute(_LETTER, {"id": 1, "key": "a", "payload": '{"episode": 2}'})
            conn.execute(_LETTER, {"id": 2, "key": "b", "payload": "{}"})  # from before episodes
    finally:
        engine.dispose()
    upgrade(database_url)
    refs, episodes, names, nullable = _copies(database_url)
    assert refs == [(1, "M-1"), (2, "M-2"), (3, "M-2")]
    assert episodes == [(1, 2), (2, None)]
    assert names >= INDEXES and not nullable
    assert _differences(database_url) == []
    command.downgrade(alembic_config(database_url), "0014")
    engine = make_engine(database_url)
    try:
        found = inspect(engine)
        assert "case_ref" not in {c["name"] for c in found.get_columns("clocks")}
        assert "episode" not in {c["name"] for c in found.get_columns("outbox")}
        assert "ix_clocks_counting_due" in {ix["name"] for ix in found.get_indexes("clocks")}
    finally:
        engine.dispose()
    upgrade(database_url)
    assert _copies(database_url)[0] == [(1, "M-1"), (2, "M-2"), (3, "M-2")]


def test_the_predicate_names_the_letters_the_open_loops_count() -> None:
    assert set(queue_indexes.NOT_GONE_LETTER_STATUSES) == set(open_loops.NOT_GONE)
