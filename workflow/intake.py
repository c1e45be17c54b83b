"""Taking events in: every line is kept, each valid one applied once, the rest explained.

A line is accepted, skipped as a duplicate (its ``id`` was seen before), or rejected with a
reason naming the line, the field and the rule. Rejected lines stay in ``received_events``, with
what the database could not store or a screen could not show escaped (:func:`jsonlines.showable`).
Whatever a line holds (bytes that are not UTF-8, a NUL, a value too long for its column) it is
refused on its own and the next line is read. Accepted events may carry warnings
(:mod:`workflow.intake_warnings`).
Those rejected for the order they came in (an unknown case, a state that has not been reached
yet) are retried, at the end of every import and on demand, oldest event first. Everything here
runs in the caller's transaction; :mod:`services.intake` decides where transactions begin and end.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from workflow import batch, case_locks, casework, intake_warnings, jsonlines, limits
from workflow.clocks import Rulebook
from workflow.errors import (
    Conflict,
    EventConflict,
    EventRejected,
    Invalid,
    MalformedEvent,
    NotFound,
    ReceivedStatus,
    RejectionKind,
)
from workflow.events import DutyFulfilled, Event, parse_line, validate_event
from workflow.model import ReceivedEvent

FUTURE_TOLERANCE = timedelta(minutes=5)
# How long a rejection that order could explain waits for the events that would explain it. An
# event still out of place after this is not going to fit: it stops being retried, stays listed
# (as expired) for a person to correct or dismiss.
PARKED_AT_MOST = timedelta(days=30)


@dataclass
class LineResult:
    """What became of one line, for callers that answer event by event (the HTTP API)."""

    line: int
    id: str | None  # the event's id, or the id it claimed; None when the line named none
    status: str  # accepted | duplicate | rejected
    reason: str | None = None
    warnings: list[str] = field(default_factory=list)
    row: int | None = None  # the received_events row that keeps it (none for a duplicate)


@dataclass
class ImportReport:
    accepted: int = 0
    duplicates: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    retried_accepted: int = 0
    results: list[LineResult] = field(default_factory=list)  # in the order of the lines

    @property
    def ok(self) -> bool:
        return not self.rejected


@dataclass
class RetryReport:
    accepted: int = 0
    still_rejected: int = 0
    warnings: list[str] = field(default_factory=list)


def import_lines(
    session: Session,
    book: Rulebook,
    lines: Iterable[tuple[int, bytes | str]],
    source: str,
    now: datetime,
    report: ImportReport,
    touched: set[str] | None = None,
) -> list[int]:
    """Take numbered lines from ``source`` in the caller's transaction, a savepoint per event
    (:mod:`workflow.intake_batch` takes a batch at once; this is its fallback, and the way to
    take a few lines). Lines may be bytes (decoded here, each on its own) or text. A blank line
    is no event and is passed over. Adds to ``report``, and the refs of the cases its valid
    events name to ``touched`` (those whose parked events may now fit); returns the ids of the
    rows this batch rejected."""
    rejected_rows: list[int] = []
    decoded = [(line_no, *jsonlines.decode(raw, first=line_no == 1)) for line_no, raw in lines]
    # Each line locks its case as it comes; the locks of every case the lines name, taken first in
    # one order, make a concurrent importer of the same cases wait before either has begun.
    case_locks.take(session, _refs_named(text for _, text, refused in decoded if refused is None))
    for line_no, text, refused in decoded:
        if is_event(text, refused):
            case = _import_one(session, book, text, refused, source, line_no, now, report, rejected_rows)
            if case is not None and touched is not None:
                touched.add(case)
    return rejected_rows


def _refs_named(texts: Iterable[str]) -> set[str]:
    """The case refs lines claim to be about, valid or not (a refused line locks for nothing)."""
    refs: set[str] = set()
    for text in texts:
        try:
            data = parse_line(text)
        except MalformedEvent:
            continue
        if isinstance(ref := data.get("case"), str):
            refs.add(ref)
    return refs


def is_event(text: str, refused: MalformedEvent | None) -> bool:
    """Whether a decoded line is an event to take (a blank line is not)."""
    return refused is not None or bool(text.strip(_JSON_WHITESPACE))


# Only these make a line blank (str.strip would also strip control characters and separators).
_JSON_WHITESPACE = " \t\r\n"


def still_rejected(session: Session, row_ids: list[int]) -> set[int]:
    """Which of these received rows are still rejected (a retry may have accepted some)."""
    found: set[int] = set()
    for start in range(0, len(row_ids), 500):
        found.update(
            session.scalars(
                select(ReceivedEvent.id).where(
                    ReceivedEvent.id.in_(row_ids[start : start + 500]),
                    ReceivedEvent.status == ReceivedStatus.REJECTED.value,
                )
            )
        )
    return found


def _import_one(
    session: Session,
    book: Rulebook,
    raw: str,
    refused: MalformedEvent | None,
    source: str,
    line_no: int,
    now: datetime,
    report: ImportReport,
    rejected_rows: list[int],
) -> str | None:
    """Take one line; returns the ref of the case it names, if it is a valid event."""
    row = received_row(raw, source, line_no, now)
    try:
        data, event = checked(book, row, raw, refused, now)
        previous = session.scalar(select(ReceivedEvent).where(ReceivedEvent.event_id == event.id))
        check_conflict(previous, data, event)
    except EventRejected as exc:
        exc.line = line_no
        store_rejection(session, row, exc, rejected_rows, report)
        return None

    if previous is not None:
        duplicate(report, line_no, event.id, previous)
        return event.case
    row.event_id, row.status, row.accepted_at = event.id, ReceivedStatus.ACCEPTED.value, now
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
            case = casework.apply(session, book, event, row.id)
            warned = intake_warnings.check(session, case, event, row.id)
        accepted(report, line_no, event, warned, row.id)
        return event.case
    except EventRejected as exc:
        exc.line = line_no
        store_rejection(session, _fresh(row), exc, rejected_rows, report)
        return event.case
    except IntegrityError:
        # Another importer may have taken this id between our look-up and our insert.
        previous = session.scalar(select(ReceivedEvent).where(ReceivedEvent.event_id == event.id))
        if previous is None:
            raise
        duplicate(report, line_no, event.id, previous)
    return None


def received_row(raw: str, source: str, line_no: int, now: datetime) -> ReceivedEvent:
    """The row that keeps a line, whatever becomes of it."""
    return ReceivedEvent(
        raw=jsonlines.showable(raw), source=source, line_no=line_no, received_at=now, attempts=1
    )


def checked(
    book: Rulebook, row: ReceivedEvent, raw: str, refused: MalformedEvent | None, now: datetime
) -> tuple[dict[str, object], Event]:
    """The line's content and its event, or the ``EventRejected`` saying what is wrong with it
    (pure: no database). What the line claims is copied to ``row`` to show on the rejected list."""
    if refused is not None:
        raise refused
    data = parse_line(raw)
    # Kept to show on the rejected list, even when the event is refused for them.
    row.claimed_id = _storable(data.get("id"), limits.EVENT_ID)
    row.case_ref = _storable(data.get("case"), limits.CASE_REF)
    row.type = _storable(data.get("type"), limits.CODE)
    event = validate_event(data)
    row.occurred_at = event.at
    if event.at - now > FUTURE_TOLERANCE:
        raise MalformedEvent("at", f"{event.at.isoformat()} is in the future")
    _from_the_feed(event, book)
    return data, event


def check_conflict(previous: ReceivedEvent | None, data: object, event: Event) -> None:
    """Refuse a line whose id was received before with other content."""
    if previous is not None and _content(previous.raw) != data:
        raise EventConflict(
            "id",
            f"event {event.id} was already received with different content (line "
            f"{previous.line_no} of {previous.source}); one id names one event: send the "
            "change as a new event with its own id",
        )


def accepted(report: ImportReport, line_no: int, event: Event, warned: list[str], row_id: int) -> None:
    report.accepted += 1
    report.warnings += [f"line {line_no}: {w}" for w in warned]
    report.results.append(LineResult(line_no, event.id, ReceivedStatus.ACCEPTED.value, None, warned, row_id))


# Events caseloop records for itself (a letter that failed); a case system may not send them.
CASELOOP_ONLY = frozenset({"letter.failed"})


def _from_the_feed(event: Event, book: Rulebook) -> None:
    """What the integration feed may not say, though caseloop may say it of itself."""
    if event.type in CASELOOP_ONLY:
        raise MalformedEvent(
            "type", f"{event.type} is recorded by caseloop itself, not sent by a case system"
        )
    if isinstance(event, DutyFulfilled):
        known = book.policy.done_by_hand
        if event.duty not in known:
            raise MalformedEvent(
                "duty", f"{event.duty!r} is not a duty of the policy (known: {', '.join(known)})"
            )


def _content(raw: str) -> object:
    """A stored line's content, compared as JSON (key order and spacing do not matter)."""
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _fresh(row: ReceivedEvent) -> ReceivedEvent:
    """A new row with the received fields of ``row`` (the savepoint that held it rolled back)."""
    return ReceivedEvent(
        event_id=row.event_id,
        status=ReceivedStatus.REJECTED.value,
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


def store_rejection(
    session: Session, row: ReceivedEvent, exc: EventRejected, ids: list[int], report: ImportReport
) -> None:
    row.status, row.rejection_kind, row.reason = ReceivedStatus.REJECTED.value, exc.kind.value, exc.reason
    if exc.kind is RejectionKind.MALFORMED:
        row.event_id = None  # a corrected line may be sent again with the same id
    batch.add(session, row)
    if row.id is None:
        session.flush()  # its id, for the report (a batch gives it beforehand)
    ids.append(row.id)
    report.rejected.append(exc.reason)
    report.results.append(
        LineResult(row.line_no, row.claimed_id, ReceivedStatus.REJECTED.value, exc.reason, row=row.id)
    )


def duplicate(report: ImportReport, line_no: int, event_id: str, previous: ReceivedEvent) -> None:
    note = _duplicate_note(line_no, event_id, previous)
    report.duplicates.append(note)
    report.results.append(LineResult(line_no, event_id, DUPLICATE, note))


DUPLICATE = "duplicate"  # a result, not a ReceivedStatus: a duplicate line is not stored again


def _duplicate_note(line_no: int, event_id: str, previous: ReceivedEvent) -> str:
    if previous.status == ReceivedStatus.ACCEPTED:
        return f"line {line_no}: event {event_id} was already accepted; skipped"
    if previous.status == ReceivedStatus.DISMISSED:  # set aside for good: it waits for nothing
        return f"line {line_no}: event {event_id} was already received and dismissed; skipped"
    return f"line {line_no}: event {event_id} was already received and is waiting for a retry; skipped"


def _storable(value: object, length: int) -> str | None:
    return jsonlines.showable(value)[:length] if isinstance(value, str) else None


def retry_pass(
    session: Session,
    book: Rulebook,
    now: datetime,
    warnings: list[str] | None = None,
    cases: Collection[str] | None = None,
) -> tuple[int, int]:
    """One pass over every rejection that order could explain (or only those of ``cases``, the
    refs an import changed: no other case has anything new to explain its events), oldest event
    first, in the caller's transaction. Returns how many were accepted and how many are still
    waiting; the warnings about those accepted are added to ``warnings``."""
    progressed = 0
    parked = select(ReceivedEvent).where(
        ReceivedEvent.status == ReceivedStatus.REJECTED.value,
        ReceivedEvent.rejection_kind.notin_([k.value for k in RejectionKind if not k.retryable]),
    )
    if cases is None:
        waiting = list(session.scalars(parked))
    else:
        refs = sorted(cases)
        # Those that waited too long, of any case, are still set aside by every import.
        found = {
            r.id: r for r in session.scalars(parked.where(ReceivedEvent.received_at < now - PARKED_AT_MOST))
        }
        for start in range(0, len(refs), 500):
            found.update(
                (r.id, r)
                for r in session.scalars(parked.where(ReceivedEvent.case_ref.in_(refs[start : start + 500])))
            )
        waiting = list(found.values())
    if waiting:
        # Their cases are locked in one order before any is changed (an event-time order would
        # cross a batch's); then the rows are read again, as another retry of the same rows may
        # have taken some while this one waited for the locks.
        case_locks.take(session, (r.case_ref for r in waiting if r.case_ref is not None))
        ids = [r.id for r in waiting]
        waiting = []
        for start in range(0, len(ids), 500):
            again = parked.where(ReceivedEvent.id.in_(ids[start : start + 500]))
            waiting += session.scalars(again.execution_options(populate_existing=True))
    waiting.sort(key=lambda r: (r.occurred_at is None, r.occurred_at or now, r.id))
    expired = 0
    for row in waiting:
        if now - row.received_at > PARKED_AT_MOST:
            row.rejection_kind = RejectionKind.EXPIRED.value
            row.reason = (
                f"{row.reason} (waited {(now - row.received_at).days} days for the events that "
                "could explain it; no longer retried: correct it and send it again, or dismiss it)"
            )
            expired += 1
            continue
        event = validate_event(parse_line(row.raw))
        row.attempts += 1
        try:
            with session.begin_nested():
                case = casework.apply(session, book, event, row.id)
                warned = intake_warnings.check(session, case, event, row.id)
        except EventRejected as exc:
            exc.line = row.line_no
            row.rejection_kind, row.reason = exc.kind.value, exc.reason
            continue
        if warnings is not None:
            warnings += [f"line {row.line_no} of {row.source} (on retry): {w}" for w in warned]
        row.status, row.rejection_kind, row.reason = ReceivedStatus.ACCEPTED.value, None, None
        row.accepted_at = now
        progressed += 1
    return progressed, len(waiting) - progressed - expired


def list_rejected(session: Session) -> list[ReceivedEvent]:
    return list(
        session.scalars(
            select(ReceivedEvent)
            .where(ReceivedEvent.status == ReceivedStatus.REJECTED.value)
            .order_by(ReceivedEvent.id)
        )
    )


def dismiss(session: Session, received_id: int, by: str, why: str, now: datetime) -> ReceivedEvent:
    """Set a rejected event aside for good: it is kept, with who dismissed it, when and why."""
    if not why.strip():
        raise Invalid("a dismissal needs a reason")
    if not by.strip():
        raise Invalid("a dismissal needs the name of who dismissed it")
    row = session.get(ReceivedEvent, received_id, with_for_update=True)
    if row is None:
        raise NotFound(f"no received event {received_id}")
    if row.status != ReceivedStatus.REJECTED:
        raise Conflict(f"received event {received_id} is {row.status}: only rejected events are dismissed")
    row.status, row.dismissed_by, row.dismissed_at, row.dismissal = (
        ReceivedStatus.DISMISSED.value,
        by,
        now,
        why,
    )
    return row
