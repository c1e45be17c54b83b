"""Events in: import a file or a request's events, retry and dismiss rejected ones.

An import commits every :data:`BATCH` lines, each batch its own unit of work, so a crash loses
at most one batch and a long file never holds the write lock for long; every line is kept
whatever becomes of it. Then the rejections that order could explain are retried.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice

from services.actors import Actor
from services.authorisation import Action, authorise
from services.runtime import Runtime
from workflow import intake
from workflow.errors import RejectionKind
from workflow.intake import ImportReport, RetryReport
from workflow.model import ReceivedEvent

BATCH = 200  # lines per transaction: bounded work lost on a crash, and fast enough on SQLite


def _batches(lines: Iterable[str]) -> Iterator[list[tuple[int, str]]]:
    numbered = enumerate(lines, start=1)
    while batch := list(islice(numbered, BATCH)):
        yield batch


def import_events(
    rt: Runtime, actor: Actor, lines: Iterable[str], source: str, now: datetime | None = None
) -> ImportReport:
    """Import JSON Lines from ``source``; then retry what earlier order problems held back."""
    authorise(actor, Action.IMPORT_EVENTS)
    now = now or rt.clock()
    report = ImportReport()
    rejected_rows: list[int] = []
    for batch in _batches(lines):
        with rt.writing() as uow:
            rejected_rows += intake.import_lines(uow.session, rt.book, batch, source, now, report)
            uow.commit()
    report.retried_accepted = _retry(rt, now).accepted
    if rejected_rows:
        # Lines of this file that a retry then accepted no longer count as rejected.
        with rt.reading() as uow:
            still = intake.still_rejected(uow.session, rejected_rows)
        report.rejected = [r for r, i in zip(report.rejected, rejected_rows, strict=True) if i in still]
    return report


def retry_rejected(rt: Runtime, actor: Actor, now: datetime | None = None) -> RetryReport:
    """Retry every rejection that order could explain, oldest event first, until nothing moves."""
    authorise(actor, Action.MANAGE_EVENTS)
    return _retry(rt, now or rt.clock())


def _retry(rt: Runtime, now: datetime) -> RetryReport:
    report = RetryReport()
    while True:
        with rt.writing() as uow:
            progressed, remaining = intake.retry_pass(uow.session, rt.book, now)
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
