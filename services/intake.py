"""Events in: import a file or a request's events, retry and dismiss rejected ones.

An import commits every :data:`BATCH` lines, each batch its own unit of work, so a crash loses
at most one batch and a long file never holds the write lock for long; every line is kept
whatever becomes of it. A batch is taken at once (:mod:`workflow.intake_batch`: a few statements
a batch rather than a few an event); when that cannot be (another importer took one of its ids
at the same moment) it is rolled back and taken again line by line. Then the rejections that
order could explain are retried, those of the cases the import changed. An import that
cannot go on (its input unreadable, the database gone) raises :class:`ImportFailed` saying how far
it got, never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import IO

from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from messaging import owed
from services.actors import Actor
from services.authorisation import Action, authorise
from services.runtime import Runtime
from workflow import intake, intake_batch
from workflow.errors import ImportFailed, ReceivedStatus, RejectionKind
from workflow.intake import ImportReport, RetryReport
from workflow.jsonlines import read_lines
from workflow.model import ReceivedEvent

BATCH = 1000  # lines per transaction: bounded work lost on a crash; fewer, larger batches cost less


SOURCE_LENGTH = 255  # received_events.source

log = logging.getLogger(__name__)


def _batches(lines: Iterable[bytes | str]) -> Iterator[list[tuple[int, bytes | str]]]:
    numbered = enumerate(lines, start=1)
    while batch := list(islice(numbered, BATCH)):
        yield batch


Progress = Callable[[int], None]  # told the number of the last line committed, after each batch


def import_stream(
    rt: Runtime,
    actor: Actor,
    stream: IO[bytes],
    source: str,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a file or standard input as bytes: each line is decoded on its own, so one line
    that is not UTF-8 is refused by its number and the others are taken."""
    return import_events(rt, actor, read_lines(stream), source, now, progress)


def import_events(
    rt: Runtime,
    actor: Actor,
    lines: Iterable[bytes | str],
    source: str,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import JSON Lines from ``source``; then retry what earlier order problems held back, for
    the cases this import changed (``retry_rejected`` retries them all)."""
    authorise(actor, Action.IMPORT_EVENTS)
    now = now or rt.clock()
    source = source[:SOURCE_LENGTH]
    report = ImportReport()
    rejected_rows: list[int] = []
    touched: set[str] = set()  # refs of the cases the valid events name
    taken = 0  # lines committed so far
    try:
        for batch in _batches(lines):
            rejected_rows += _import_batch(rt, batch, source, now, report, touched)
            taken = batch[-1][0]
            if progress is not None:
                progress(taken)
        retried = _retry(rt, now, touched) if touched else RetryReport()
    except (OSError, SQLAlchemyError) as exc:
        raise _failed(exc, taken) from exc
    report.retried_accepted = retried.accepted
    report.warnings += retried.warnings
    if report.accepted or report.retried_accepted:
        rt.wake()  # committed: the letters these events made owed go now, not at the next sweep
    if rejected_rows:
        # Lines of this file that a retry then accepted no longer count as rejected.
        with rt.reading() as uow:
            still = intake.still_rejected(uow.session, rejected_rows)
        report.rejected = [r for r, i in zip(report.rejected, rejected_rows, strict=True) if i in still]
        for result in report.results:
            if result.status == ReceivedStatus.REJECTED and result.row not in still:
                result.status, result.reason = ReceivedStatus.ACCEPTED.value, None
    return report


def _import_batch(
    rt: Runtime,
    lines: list[tuple[int, bytes | str]],
    source: str,
    now: datetime,
    report: ImportReport,
    touched: set[str],
) -> list[int]:
    """One batch, one unit of work: at once, or line by line when at once could not be; taken
    again, whole, when the database ended its transaction to break a lock conflict. Intake takes
    its locks in one order (:mod:`workflow.case_locks`), but the other writers of a case (a
    delivery, a sweep, a person) do not all, and taking the batch again is safe: what it took is
    rolled back, and lines taken meanwhile by another importer are found as duplicates."""
    for tries in range(1, BATCH_TRIES + 1):
        try:
            part, cases, rejected = _take_batch(rt, lines, source, now)
            break
        except DBAPIError as exc:
            code = getattr(exc.orig, "sqlstate", None)
            if code not in _TAKE_AGAIN or tries == BATCH_TRIES:
                raise
            log.warning("an import batch was ended by the database (%s); taking it again", code)
    report.accepted += part.accepted
    report.duplicates += part.duplicates
    report.rejected += part.rejected
    report.warnings += part.warnings
    report.results += part.results
    touched |= cases
    return rejected


BATCH_TRIES = 3
# PostgreSQL's codes for a transaction it ended only because of others: a deadlock it broke, a
# serialization failure. Any other error is not made better by trying again.
_TAKE_AGAIN = frozenset({"40P01", "40001"})


def _take_batch(
    rt: Runtime, lines: list[tuple[int, bytes | str]], source: str, now: datetime
) -> tuple[ImportReport, set[str], list[int]]:
    part, cases = ImportReport(), set[str]()
    try:
        with rt.writing() as uow:
            rejected = intake_batch.import_batch(
                uow.session, rt.book, lines, source, now, part, (owed.letters_of, owed.letter_key), cases
            )
            uow.commit()
    except (intake_batch.LateRejection, IntegrityError):
        # Rolled back whole; line by line, each event in a savepoint of its own, the line that
        # could not be taken at once is taken (or refused, or found a duplicate) on its own.
        part, cases = ImportReport(), set()
        with rt.writing() as uow:
            rejected = intake.import_lines(uow.session, rt.book, lines, source, now, part, cases)
            uow.commit()
    return part, cases, rejected


def retry_rejected(rt: Runtime, actor: Actor, now: datetime | None = None) -> RetryReport:
    """Retry every rejection that order could explain, oldest event first, until nothing moves."""
    authorise(actor, Action.MANAGE_EVENTS)
    return _retry(rt, now or rt.clock())


def _failed(exc: OSError | SQLAlchemyError, taken: int) -> ImportFailed:
    # Only the error's type for the database: its message may quote a value of the line.
    what = (
        f"the input could not be read ({exc.strerror or type(exc).__name__})"
        if isinstance(exc, OSError)
        else f"the database failed ({type(exc).__name__})"
    )
    kept = f"lines 1–{taken} are kept" if taken else "no line was kept"
    return ImportFailed(
        f"the import stopped after line {taken}: {what}; {kept}, and importing the same input "
        "again takes the rest (lines already taken are skipped as duplicates)"
    )


def _retry(rt: Runtime, now: datetime, cases: set[str] | None = None) -> RetryReport:
    report = RetryReport()
    while True:
        with rt.writing() as uow:
            progressed, remaining = intake.retry_pass(uow.session, rt.book, now, report.warnings, cases)
            uow.commit()
        report.accepted += progressed
        report.still_rejected = remaining
        if not progressed or not remaining:
            return report


@dataclass(frozen=True)
class RejectedView:
    id: int
    event: str | None
    case: str | None
    type: str | None
    source: str
    line: int
    kind: str | None
    retryable: bool
    attempts: int
    reason: str | None


def list_rejected(rt: Runtime, actor: Actor) -> list[RejectedView]:
    """Rejected events and why (kept; retried with ``retry_rejected``)."""
    authorise(actor, Action.MANAGE_EVENTS)
    with rt.reading() as uow:
        return [_rejected_view(r) for r in intake.list_rejected(uow.session)]


def _rejected_view(r: ReceivedEvent) -> RejectedView:
    return RejectedView(
        id=r.id,
        event=r.event_id or r.claimed_id,
        case=r.case_ref,
        type=r.type,
        source=r.source,
        line=r.line_no,
        kind=r.rejection_kind,
        retryable=r.rejection_kind is not None and RejectionKind(r.rejection_kind).retryable,
        attempts=r.attempts,
        reason=r.reason,
    )


def dismiss_rejected(
    rt: Runtime, actor: Actor, received_id: int, by: str, why: str, now: datetime | None = None
) -> RejectedView:
    """Set a rejected event aside for good, recording ``by`` and why; it is kept, never retried."""
    authorise(actor, Action.MANAGE_EVENTS)
    with rt.writing() as uow:
        row = intake.dismiss(uow.session, received_id, by, why, now or rt.clock())
        view = _rejected_view(row)
        uow.commit()
    return view
