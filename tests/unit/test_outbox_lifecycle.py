"""The outbox lifecycle table (messaging/lifecycle.py): complete, strict, audited, published, drawn.

Where a session is needed the tests use a real, migrated SQLite file whose sessions carry a
handler table that records what :func:`messaging.lifecycle.move` publishes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cli.main import app
from messaging.lifecycle import (
    FINAL,
    MOVES,
    IllegalMove,
    MessageFailed,
    MessageSent,
    Move,
    admit,
    allowed,
    mermaid,
    move,
)
from messaging.outbox import OutboxAudit, OutboxMessage, Status
from migrations import upgrade
from workflow.bus import HANDLERS
from workflow.db import Database
from workflow.errors import Conflict, Invalid

AT = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
EDGES = {(m.source, m.target) for m in MOVES}
PAIRS = list(itertools.product(Status, Status))
_keys = itertools.count(1)


class Published:
    """A handler table that keeps every MessageSent and MessageFailed it is handed."""

    def __init__(self) -> None:
        self.events: list[MessageSent | MessageFailed] = []

    def __call__(self, session: Session, event: MessageSent | MessageFailed) -> None:
        self.events.append(event)


@pytest.fixture
def published() -> Published:
    return Published()


@pytest.fixture
def db(tmp_path: Path, published: Published) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'lifecycle.db'}"
    upgrade(url)
    database = Database(url, session_info={HANDLERS: {MessageSent: [published], MessageFailed: [published]}})
    yield database
    database.dispose()


def message(session: Session, status: Status) -> OutboxMessage:
    """A staff digest already in ``status`` (set by hand: a test stages it)."""
    row = OutboxMessage(
        idempotency_key=f"test:{next(_keys)}",
        kind="digest",
        recipient_role="staff",
        recipient="W1",
        address="w1@council.example",
        channel="file",
        status=status.value,
        next_attempt_at=AT,
        created_at=AT,
        payload={},
    )
    session.add(row)
    session.flush()
    return row


def audits(session: Session, outbox_id: int) -> list[tuple[str, str, datetime, str | None]]:
    query = select(OutboxAudit).where(OutboxAudit.outbox_id == outbox_id).order_by(OutboxAudit.id)
    rows = session.scalars(query)
    return [(a.action, a.by, a.at, a.note) for a in rows]


# -- the table itself --------------------------------------------------------------------------


def test_every_status_appears_in_the_table() -> None:
    mentioned = {m.target for m in MOVES} | {m.source for m in MOVES if m.source is not None}
    assert mentioned == set(Status)


def test_every_status_is_reachable_from_a_new_message() -> None:
    reached: set[Status] = set()
    frontier = {m.target for m in MOVES if m.source is None}
    while frontier:
        reached |= frontier
        frontier = {m.target for m in MOVES if m.source in frontier} - reached
    assert reached == set(Status)


def test_each_move_is_declared_once_and_says_what_it_means() -> None:
    assert len(EDGES) == len(MOVES)
    assert all(m.why.strip() for m in MOVES)
    assert all(allowed(m.source, m.target) is m for m in MOVES)


def test_final_statuses_are_never_left_except_failed_to_sent_with_a_reason() -> None:
    assert {Status.FAILED, Status.REJECTED, Status.CANCELLED} == FINAL
    leaving = [m for m in MOVES if m.source in FINAL]
    assert [(m.source, m.target, m.needs_note) for m in leaving] == [(Status.FAILED, Status.SENT, True)]


# -- move() and admit() ------------------------------------------------------------------------


@pytest.mark.parametrize(("source", "target"), [p for p in PAIRS if p not in EDGES], ids=str)
def test_an_illegal_move_raises_illegal_move_naming_both_statuses(
    db: Database, published: Published, source: Status, target: Status
) -> None:
    with db.transaction() as session:
        row = message(session, source)
        with pytest.raises(IllegalMove) as refused:
            move(session, row, target, by="W1", at=AT, note="a reason that changes nothing")
        assert row.status == source  # unchanged
        assert audits(session, row.id) == []
    assert isinstance(refused.value, Conflict)
    text = str(refused.value)
    assert f"from {source.value}" in text and f"to {target.value}" in text, text
    assert (" (a final status)" in text) == (source in FINAL)
    assert published.events == []


@pytest.mark.parametrize("status", [s for s in Status if (None, s) not in EDGES], ids=str)
def test_a_new_message_cannot_start_anywhere_but_queued_or_held(db: Database, status: Status) -> None:
    with db.transaction() as session:
        fresh = OutboxMessage(
            idempotency_key=f"test:{next(_keys)}",
            kind="digest",
            recipient_role="staff",
            recipient="W1",
            address="w1@council.example",
            channel="file",
            next_attempt_at=AT,
            created_at=AT,
            payload={},
        )
        with pytest.raises(IllegalMove) as refused:
            admit(session, fresh, status, by="caseloop", at=AT)
    assert str(refused.value) == f"a new message cannot start {status.value}"


@pytest.mark.parametrize("note", [None, "", "   "], ids=["none", "empty", "blank"])
def test_failed_to_sent_without_a_reason_is_invalid(
    db: Database, published: Published, note: str | None
) -> None:
    with db.transaction() as session:
        row = message(session, Status.FAILED)
        with pytest.raises(Invalid) as refused:
            move(session, row, Status.SENT, by="W1", at=AT, note=note)
        assert not isinstance(refused.value, IllegalMove)
        assert str(refused.value) == f"outbox {row.id}: moving from failed to sent needs a reason"
        assert row.status == Status.FAILED
        assert audits(session, row.id) == []
    assert published.events == []


def test_failed_to_sent_with_a_reason_is_a_correction(db: Database, published: Published) -> None:
    why = "Notify's late receipt: delivered on 4 November"
    with db.transaction() as session:
        row = message(session, Status.FAILED)
        step = move(session, row, Status.SENT, by="W1", at=AT, note=why)
        assert (step.audit, row.status) == ("corrected", Status.SENT)
        assert audits(session, row.id) == [("corrected", "W1", AT, why)]
    assert [type(e) for e in published.events] == [MessageSent]


@pytest.mark.parametrize(
    "step", [m for m in MOVES if m.source is not None], ids=lambda m: f"{m.source}-{m.target}"
)
def test_each_move_audits_and_publishes_as_the_table_says(
    db: Database, published: Published, step: Move
) -> None:
    m = step
    assert m.source is not None
    note = "a reason" if m.needs_note else None
    with db.transaction() as session:
        row = message(session, m.source)
        row.last_error = "the provider reported: returned-letter"
        assert move(session, row, m.target, by="TM1", at=AT, note=note) is m
        assert row.status == m.target
        # The audit row is there in the mover's own transaction, before anything is committed.
        expected = [(m.audit, "TM1", AT, note)] if m.audit else []
        assert audits(session, row.id) == expected
        outbox_id = row.id
    with db.reading() as session:
        assert session.get(OutboxMessage, outbox_id).status == m.target  # type: ignore[union-attr]
        assert audits(session, outbox_id) == expected
    if m.target is Status.SENT:
        [sent] = published.events
        assert isinstance(sent, MessageSent) and (sent.message.id, sent.at) == (outbox_id, AT)
    elif m.target is Status.FAILED:
        [failed] = published.events
        assert isinstance(failed, MessageFailed) and (failed.message.id, failed.at) == (outbox_id, AT)
        assert failed.why == (note or "the provider reported: returned-letter")
    else:
        assert published.events == []


@pytest.mark.parametrize("status", [Status.QUEUED, Status.HELD], ids=str)
def test_admit_audits_as_the_table_says(db: Database, status: Status) -> None:
    step = allowed(None, status)
    assert step is not None
    with db.transaction() as session:
        fresh = OutboxMessage(
            idempotency_key=f"test:{next(_keys)}",
            kind="digest",
            recipient_role="staff",
            recipient="W1",
            address="w1@council.example",
            channel="file",
            next_attempt_at=AT,
            created_at=AT,
            payload={},
        )
        admit(session, fresh, status, by="caseloop", at=AT, note="why it waits")
        assert fresh.status == status
        expected = [(step.audit, "caseloop", AT, "why it waits")] if step.audit else []
        assert audits(session, fresh.id) == expected


def test_a_move_and_its_audit_row_roll_back_together(db: Database, published: Published) -> None:
    with db.transaction() as session:
        outbox_id = message(session, Status.SENDING).id
    session = db.session()
    try:
        session.begin()
        row = session.get(OutboxMessage, outbox_id)
        assert row is not None
        move(session, row, Status.SENT, by="caseloop", at=AT, note="file attempt 1")
        assert audits(session, outbox_id) == [("sent", "caseloop", AT, "file attempt 1")]
        session.rollback()
    finally:
        session.close()
    with db.reading() as reader:
        assert reader.get(OutboxMessage, outbox_id).status == Status.SENDING  # type: ignore[union-attr]
        assert audits(reader, outbox_id) == []


# -- the diagram -------------------------------------------------------------------------------


def test_the_cli_draws_every_move_of_the_table_as_mermaid() -> None:
    result = CliRunner().invoke(app, ["workflow", "diagram", "--outbox"])
    assert result.exit_code == 0, result.output
    assert result.stdout == mermaid()
    lines = result.stdout.splitlines()
    assert lines[0] == "stateDiagram-v2"
    for m in MOVES:
        source = "[*]" if m.source is None else m.source.value
        assert f"    {source} --> {m.target.value}: {m.why}" in lines
    arrows = [line for line in lines[1:] if ": " in line]
    assert len(arrows) == len(MOVES)  # nothing drawn that the table does not declare
    for final in (*FINAL, Status.SENT):
        assert f"    {final.value} --> [*]" in lines
