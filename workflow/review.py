"""Reviewing held letters: a person approves (it is queued) or rejects (it never goes).

Who may review a letter: the case's allocated worker, a member of the case's team, or a service
manager. Every decision writes one audit row, in the same transaction, with who, when and why.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from workflow.errors import CaseloopError, NotFound
from workflow.history import record
from workflow.model import Case
from workflow.outbox import OutboxMessage, Status, audit
from workflow.staff import Role, Staff


class ReviewRefused(CaseloopError):
    """The letter cannot be reviewed now, or not by this person; the message says why."""


def _held(session: Session, outbox_id: int) -> tuple[OutboxMessage, Case | None]:
    row = session.get(OutboxMessage, outbox_id, with_for_update=True)
    if row is None:
        raise NotFound(f"no outbox message {outbox_id}")
    if row.status != Status.HELD:
        raise ReviewRefused(f"outbox {outbox_id} is {row.status}, not held: only held letters are reviewed")
    case = session.get(Case, row.case_id) if row.case_id is not None else None
    return row, case


def _reviewer(session: Session, staff_id: str, case: Case | None) -> Staff:
    person = session.get(Staff, staff_id)
    if person is None or not person.active:
        raise ReviewRefused(f"{staff_id} is not a known member of staff")
    allowed = person.role == Role.SERVICE_MANAGER.value or (
        case is not None and (person.id == case.worker or person.team == case.team)
    )
    if not allowed:
        raise ReviewRefused(f"{staff_id} is not the allocated worker or in the case's team")
    return person


def approve(
    session: Session, outbox_id: int, staff_id: str, note: str | None, now: datetime
) -> OutboxMessage:
    """Release a held letter: it is queued and sent by the next sweep."""
    row, case = _held(session, outbox_id)
    _reviewer(session, staff_id, case)
    row.status, row.next_attempt_at, row.dispatched_at, row.last_error = Status.QUEUED, now, None, None
    row.payload = {**row.payload, "approved_by": staff_id, "approved_at": now.isoformat()}
    audit(session, row.id, "approved", staff_id, now, note)
    if case is not None:
        record(session, case, "letter.approved", now, None, outbox=row.id, by=staff_id)
    return row


def reject(session: Session, outbox_id: int, staff_id: str, reason: str, now: datetime) -> OutboxMessage:
    """Stop a held letter for good. The duty it served stays owed until it is met another way."""
    if not reason.strip():
        raise ReviewRefused("a rejection needs a reason")
    row, case = _held(session, outbox_id)
    _reviewer(session, staff_id, case)
    row.status = Status.REJECTED
    audit(session, row.id, "rejected", staff_id, now, reason)
    if case is not None:
        record(session, case, "letter.rejected", now, None, outbox=row.id, by=staff_id)
    return row
