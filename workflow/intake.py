"""Taking events in: every line is kept, each valid one applied once, the rest explained.

A line is accepted, skipped as a duplicate (its ``id`` was seen before), or rejected with a
reason naming the line, the field and the rule. Rejected lines stay in ``received_events``.
Those rejected for the order they came in (an unknown case, a state that has not been reached
yet) are retried, at the end of every import and on demand, oldest event first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from workflow import casework
from workflow.clocks import Rulebook
from workflow.db import Database
from workflow.errors import EventRejected, MalformedEvent, RejectionKind
from workflow.events import parse_line, validate_event
from workflow.model import ReceivedEvent

BATCH = 200  # lines per transaction: bounded work lost on a crash, and fast enough on SQLite
FUTURE_TOLERANCE = timedelta(minutes=5)


@dataclass
class ImportReport:
    accepted: int = 0
    duplicates: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    retried_accepted: int = 0

    @property
    def ok(self) -> bool:
        return not self.rejected


@dataclass
class RetryReport:
    accepted: int = 0
    still_rejected: int = 0


def import_lines(
    db: Database, book: Rulebook, lines: Iterable[str], source: str, now: datetime
) -> ImportReport:
    """Import JSON Lines from ``source``; then retry what earlier order problems held back."""
    report = ImportReport()
    rejected_rows: list[int] = []
    session = db.session()
    try:
        session.begin()
        for line_no, raw in enumerate(lines, start=1):
            raw = raw.rstrip("\r\n")
            if not raw.strip():
                continue
            _import_one(session, book, raw, source, line_no, now, report, rejected_rows)
            if line_no % BATCH == 0:
                session.commit()
                session.begin()
        session.commit()
    finally:
        session.close()
    retry = retry_rejected(db, book, now)
    report.retried_accepted = retry.accepted
    if rejected_rows:
        # Lines of this file that a retry then accepted no longer count as rejected.
        with db.transaction() as tx:
            still = set(
                tx.scalars(
                    select(ReceivedEvent.id).where(
                        ReceivedEvent.id.in_(rejected_rows), ReceivedEvent.status == "rejected"
                    )
                )
            )
        report.rejected = [r for r, i in zip(report.rejected, rejected_rows, strict=True) if i in still]
    return report


def _import_one(
    session: Session,
    book: Rulebook,
    raw: str,
    source: str,
    line_no: int,
    now: datetime,
    report: ImportReport,
    rejected_rows: list[int],
) -> None:
    row = ReceivedEvent(raw=raw, source=source, line_no=line_no, received_at=now, attempts=1)
    try:
        data = parse_line(raw)
        claimed = data.get("id")
        row.claimed_id = claimed if isinstance(claimed, str) else None
        row.case_ref = _short(data.get("case"))
        row.type = _short(data.get("type"))
        event = validate_event(data)
        row.occurred_at = event.at
        if event.at - now > FUTURE_TOLERANCE:
            raise MalformedEvent("at", f"{event.at.isoformat()} is in the future")
    except MalformedEvent as exc:
        exc.line = line_no
        _store_rejection(session, row, exc, rejected_rows, report)
        return

    previous = session.scalar(select(ReceivedEvent).where(ReceivedEvent.event_id == event.id))
    if previous is not None:
        report.duplicates.append(_duplicate_note(line_no, event.id, previous))
        return
    row.event_id, row.status, row.accepted_at = event.id, "accepted", now
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
            casework.apply(session, book, event, row.id)
        report.accepted += 1
    except EventRejected as exc:
        exc.line = line_no
        _store_rejection(session, _fresh(row), exc, rejected_rows, report)
    except IntegrityError:
        # Another importer may have taken this id between our look-up and our insert.
        previous = session.scalar(select(ReceivedEvent).where(ReceivedEvent.event_id == event.id))
        if previous is None:
            raise
        report.duplicates.append(_duplicate_note(line_no, event.id, previous))


def _fresh(row: ReceivedEvent) -> ReceivedEvent:
    """A new row with the received fields of ``row`` (the savepoint that held it rolled back)."""
    return ReceivedEvent(
        event_id=row.event_id,
        status="rejected",
        claimed_id=row.claimed_id,
        case_ref=row.case_ref,
        type=row.type,
        occurred_at=row.occurred_at,
        raw=row.raw,
        source=row.source,
        line_no=row.line_no,
        attempts=1,
        received_at=row.received_at,
    )


def _store_rejection(
    session: Session, row: ReceivedEvent, exc: EventRejected, ids: list[int], report: ImportReport
) -> None:
    row.status, row.rejection_kind, row.reason = "rejected", exc.kind.value, exc.reason
    if exc.kind is RejectionKind.MALFORMED:
        row.event_id = None  # a corrected line may be sent again with the same id
    session.add(row)
    session.flush()
    ids.append(row.id)
    report.rejected.append(exc.reason)


def _duplicate_note(line_no: int, event_id: str, previous: ReceivedEvent) -> str:
    if previous.status == "accepted":
        return f"line {line_no}: event {event_id} was already accepted; skipped"
    return f"line {line_no}: event {event_id} was already received and is waiting for a retry; skipped"


def _short(value: object) -> str | None:
    return value[:64] if isinstance(value, str) else None


def retry_rejected(db: Database, book: Rulebook, now: datetime) -> RetryReport:
    """Retry every rejection that order could explain, oldest event first, until nothing moves."""
    report = RetryReport()
    while True:
        progressed = 0
        with db.transaction() as session:
            waiting = session.scalars(
                select(ReceivedEvent)
                .where(
                    ReceivedEvent.status == "rejected",
                    ReceivedEvent.rejection_kind != RejectionKind.MALFORMED.value,
                )
                .order_by(ReceivedEvent.occurred_at, ReceivedEvent.id)
            ).all()
            for row in waiting:
                event = validate_event(parse_line(row.raw))
                row.attempts += 1
                try:
                    with session.begin_nested():
                        casework.apply(session, book, event, row.id)
                except EventRejected as exc:
                    exc.line = row.line_no
                    row.rejection_kind, row.reason = exc.kind.value, exc.reason
                    continue
                row.status, row.rejection_kind, row.reason, row.accepted_at = "accepted", None, None, now
                progressed += 1
            remaining = len(waiting) - progressed
        report.accepted += progressed
        report.still_rejected = remaining
        if not progressed or not remaining:
            return report


def list_rejected(session: Session) -> list[ReceivedEvent]:
    return list(
        session.scalars(
            select(ReceivedEvent).where(ReceivedEvent.status == "rejected").order_by(ReceivedEvent.id)
        )
    )
