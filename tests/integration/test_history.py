"""The append-only case history and instants stored as aware UTC, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from config.wiring import Runtime
from tests.factories import case_view, clocks_by_name, event, history_of, import_events, referral
from workflow.model import Case, ClockRow, HistoryEntry, ReceivedEvent

NOW = "2026-12-01"


def test_every_accepted_event_and_every_state_change_is_recorded(runtime: Runtime) -> None:
    report = import_events(
        runtime,
        referral("C1", "2026-03-02", id="e1"),
        event("worker.allocated", "C1", "2026-03-02T15:00:00+00:00", id="e2", worker="w-ann"),
        event("icpc.held", "C1", "2026-03-03", id="e3", outcome="cp_plan"),  # rejected
        event("decision.made", "C1", "2026-03-03", id="e4", outcome="assessment"),
        event("assessment.completed", "C1", "2026-04-20", id="e5", outcome="cin_plan", factors=["16A"]),
        event("review.held", "C1", "2026-07-01", id="e6"),  # stays in cin_plan
        now=NOW,
    )
    assert report.accepted == 5 and len(report.rejected) == 1
    with runtime.db.transaction() as session:
        row_of = {r.event_id or r.claimed_id: r.id for r in session.scalars(select(ReceivedEvent))}

    accepted = history_of(runtime, "C1", "event.accepted")
    assert [(h.event_id, h.detail["type"]) for h in accepted] == [
        (row_of["e1"], "referral.received"),
        (row_of["e2"], "worker.allocated"),
        (row_of["e4"], "decision.made"),
        (row_of["e5"], "assessment.completed"),
        (row_of["e6"], "review.held"),
    ]
    assert accepted[1].at == datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    changed = history_of(runtime, "C1", "state.changed")
    assert [(h.detail["before"], h.detail["after"], h.event_id) for h in changed] == [
        ("new", "referral", row_of["e1"]),
        ("referral", "assessment", row_of["e4"]),
        ("assessment", "cin_plan", row_of["e5"]),
    ]
    assert all(h.event_id != row_of["e3"] for h in history_of(runtime, "C1"))
    assert {h.episode for h in history_of(runtime, "C1")} == {1}


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE case_history SET kind = 'edited'",
        "UPDATE case_history SET detail = '{}' WHERE kind = 'state.changed'",
        "DELETE FROM case_history",
        "DELETE FROM case_history WHERE kind = 'event.accepted'",
    ],
)
def test_the_database_refuses_to_change_or_remove_history(runtime: Runtime, statement: str) -> None:
    import_events(
        runtime,
        referral("C1", "2026-03-02"),
        event("decision.made", "C1", "2026-03-03", outcome="nfa"),
        now=NOW,
    )
    before = [(h.id, h.kind, h.detail) for h in history_of(runtime, "C1")]
    assert len(before) >= 4

    with pytest.raises(DBAPIError, match="append-only"), runtime.db.engine.begin() as conn:
        conn.execute(text(statement))

    assert [(h.id, h.kind, h.detail) for h in history_of(runtime, "C1")] == before
    # Appending still works: the next event adds rows after the old ones.
    import_events(runtime, event("case.closed", "C1", "2026-03-04", reason="NFA"), now=NOW)
    assert len(history_of(runtime, "C1")) > len(before)


# (sent, the UTC instant it is): spring forward, both 01:30s of autumn's repeated hour,
# a negative offset across midnight and the year, and microseconds.
INSTANTS = [
    ("2026-03-29T01:30:00+01:00", "2026-03-29T00:30:00+00:00"),
    ("2026-10-25T01:30:00+01:00", "2026-10-25T00:30:00+00:00"),
    ("2026-10-25T01:30:00+00:00", "2026-10-25T01:30:00+00:00"),
    ("2026-06-30T23:30:00-05:00", "2026-07-01T04:30:00+00:00"),
    ("2026-12-31T20:00:00-08:00", "2027-01-01T04:00:00+00:00"),
    ("2026-05-05T10:15:30.123456+05:30", "2026-05-05T04:45:30.123456+00:00"),
]


def test_datetimes_round_trip_as_the_same_aware_utc_instant(runtime: Runtime) -> None:
    events = [referral(f"T{i}", sent) for i, (sent, _) in enumerate(INSTANTS)]
    assert import_events(runtime, *events, now="2027-01-02").ok
    with runtime.db.transaction() as session:
        cases = {c.ref: c for c in session.scalars(select(Case))}
        received = {r.case_ref: r for r in session.scalars(select(ReceivedEvent))}
        entries = session.execute(
            select(Case.ref, HistoryEntry.at)
            .join(Case, Case.id == HistoryEntry.case_id)
            .where(HistoryEntry.kind == "event.accepted")
        ).all()
        clock_starts = session.execute(
            select(Case.ref, ClockRow.started_at)
            .join(Case, Case.id == ClockRow.case_id)
            .where(ClockRow.name == "decision")
        ).all()
    history_at, started = dict(entries), dict(clock_starts)
    for i, (sent, utc) in enumerate(INSTANTS):
        ref, expected = f"T{i}", datetime.fromisoformat(utc)
        for value in (cases[ref].referral_at, received[ref].occurred_at, history_at[ref], started[ref]):
            assert value == datetime.fromisoformat(sent) == expected
            assert value.utcoffset() == timedelta(0)
            assert value.isoformat() == utc
    # The two 01:30s of 25 October are an hour apart, not the same instant.
    assert cases["T2"].referral_at - cases["T1"].referral_at == timedelta(hours=1)


def test_clock_dates_are_the_councils_local_dates(runtime: Runtime) -> None:
    # 23:30 UTC on 1 June is 00:30 BST on 2 June; 23:30 UTC on 1 December is still 1 December.
    import_events(
        runtime,
        referral("SUMMER", "2026-06-01T23:30:00+00:00"),
        referral("WINTER", "2026-12-01T23:30:00+00:00"),
        referral("WEST", "2026-06-30T23:30:00-05:00"),
        now="2027-01-02",
    )
    summer = clocks_by_name(runtime, "SUMMER", "2026-06-02")["decision"]
    assert (summer["started"], summer["counted_from"]) == ("2026-06-02", "2026-06-02")
    assert summer["due"] == "2026-06-03"
    winter = clocks_by_name(runtime, "WINTER", "2026-12-02")["decision"]
    assert (winter["started"], winter["due"]) == ("2026-12-01", "2026-12-02")
    assert case_view(runtime, "WEST", "2027-01-02")["referred"] == "2026-07-01"
    with runtime.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Case)) == 3
