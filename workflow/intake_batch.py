"""Taking a batch of lines at once: the same outcome, line by line, as :func:`intake.import_lines`.

The batch is checked first, in Python alone (decoding, parsing, validation, the clock). Then one
query finds which of its ids were received before, one statement locks its cases, and the rest of
what applying its events reads is loaded with them (:mod:`workflow.batch`). The events are applied
in the order of their lines with no savepoint each: every check that can refuse an event runs
before the event changes anything (see :func:`casework.apply`), so a refused event leaves nothing
to undo. The rows the batch adds are written at the end, a statement per table.

Two things can still go wrong late, and for both the caller rolls the batch back and takes it
again line by line, a savepoint each (:func:`intake.import_lines`): a refusal raised after an
event began to change its case (:class:`LateRejection`: no check should allow it, but it must
not leave half an event behind), and another importer taking one of the batch's ids or refs
between our reading and our writing (an ``IntegrityError`` from :func:`batch.write`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflow import batch, case_locks, casework, intake_warnings, jsonlines
from workflow.clocks import Rulebook
from workflow.errors import CaseloopError, EventRejected, ReceivedStatus
from workflow.events import Event
from workflow.intake import (
    ImportReport,
    accepted,
    check_conflict,
    checked,
    duplicate,
    is_event,
    received_row,
    store_rejection,
)
from workflow.model import ReceivedEvent


class LateRejection(CaseloopError):
    """An event was refused after it had begun to change its case: take the batch line by line."""


@dataclass
class _Line:
    row: ReceivedEvent
    data: object = None
    event: Event | None = None
    refusal: EventRejected | None = None


def import_batch(
    session: Session,
    book: Rulebook,
    lines: Iterable[tuple[int, bytes | str]],
    source: str,
    now: datetime,
    report: ImportReport,
    letters: tuple[batch.LetterLoader, batch.KeyOf],
    touched: set[str],
) -> list[int]:
    """Take numbered lines in the caller's transaction, as one batch. ``letters`` reads the
    outbox rows of some cases and names each one's key (messaging's, passed in by the service).
    Adds to ``report``, and the refs of the cases its valid events name to ``touched``; returns
    the ids of the rows this batch rejected."""
    checked_lines = (_check(book, line_no, raw, source, now) for line_no, raw in lines)
    taken = [line for line in checked_lines if line is not None]
    events = [line.event for line in taken if line.event is not None]
    case_locks.take(session, (e.case for e in events))  # before anything is read: see case_locks
    previous = _received_before(session, [e.id for e in events])
    loaded = batch.load(
        session,
        refs=[e.case for e in events],
        teams=[t for e in events if isinstance(t := getattr(e, "team", None), str)],
        workers=[w for e in events if isinstance(w := getattr(e, "worker", None), str)],
        letters_of=letters[0],
        letter_key=letters[1],
    )
    touched.update(e.case for e in events)
    rejected_rows: list[int] = []
    session.info[batch.KEY] = loaded
    try:
        # Nothing the batch reads is in the database until the end: a flush before then would
        # only cost time (and the ids it would give, the batch has given already).
        with session.no_autoflush:
            for line in taken:
                _apply(session, book, line, previous, loaded, now, report, rejected_rows)
        batch.write(session, loaded)
    finally:
        del session.info[batch.KEY]
    return rejected_rows


def _check(book: Rulebook, line_no: int, raw: bytes | str, source: str, now: datetime) -> _Line | None:
    text, refused = jsonlines.decode(raw, first=line_no == 1)
    if not is_event(text, refused):
        return None
    line = _Line(received_row(text, source, line_no, now))
    try:
        line.data, line.event = checked(book, line.row, text, refused, now)
    except EventRejected as exc:
        exc.line = line_no
        line.refusal = exc
    return line


def _received_before(session: Session, ids: list[str]) -> dict[str, ReceivedEvent]:
    found: dict[str, ReceivedEvent] = {}
    unique = sorted(set(ids))
    for start in range(0, len(unique), batch.CHUNK):
        query = select(ReceivedEvent).where(ReceivedEvent.event_id.in_(unique[start : start + batch.CHUNK]))
        found.update((r.event_id, r) for r in session.scalars(query) if r.event_id is not None)
    return found


def _apply(
    session: Session,
    book: Rulebook,
    line: _Line,
    previous: dict[str, ReceivedEvent],
    loaded: batch.Loaded,
    now: datetime,
    report: ImportReport,
    rejected_rows: list[int],
) -> None:
    row, event = line.row, line.event
    try:
        if line.refusal is not None:
            raise line.refusal
        assert event is not None
        before = previous.get(event.id)
        check_conflict(before, line.data, event)
    except EventRejected as exc:
        exc.line = row.line_no
        row.id = loaded.ids.next(ReceivedEvent)
        store_rejection(session, row, exc, rejected_rows, report)
        return
    if before is not None:
        duplicate(report, row.line_no, event.id, before)
        return
    row.id = loaded.ids.next(ReceivedEvent)
    row.event_id, row.status, row.accepted_at = event.id, ReceivedStatus.ACCEPTED.value, now
    previous[event.id] = row  # a later line of this batch with the same id is its duplicate
    loaded.mutated = False
    try:
        case = casework.apply(session, book, event, row.id)
    except EventRejected as exc:
        if loaded.mutated:
            raise LateRejection(f"line {row.line_no}: refused after it began to apply") from exc
        exc.line = row.line_no
        row.accepted_at = None
        store_rejection(session, row, exc, rejected_rows, report)
        if row.event_id is None:  # refused as malformed: its id stays free for a corrected line
            del previous[event.id]
        return
    batch.add(session, row)
    warned = intake_warnings.check(session, case, event, row.id)
    accepted(report, row.line_no, event, warned, row.id)
