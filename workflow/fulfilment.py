"""When a duty's letters have gone, caseloop records ``duty.fulfilled`` for itself.

It is an event like any other (kept in ``received_events`` with source ``caseloop``, applied
through the lifecycle, written to the history), so the duty's clock stops exactly as it would if
the council had recorded the letter by hand, and only once: the event's id is unique.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflow import casework
from workflow.clocks import Rulebook
from workflow.duties import duty_done, fulfilment_event
from workflow.events import validate_event
from workflow.model import Case, ReceivedEvent
from workflow.outbox import OutboxMessage

SOURCE = "caseloop"


def letter_sent(session: Session, book: Rulebook, message: OutboxMessage, at: datetime) -> bool:
    """Record the duty as fulfilled if ``message`` was its last letter to go. True if it did."""
    if message.case_id is None or not duty_done(session, message):
        return False
    case = session.get(Case, message.case_id)
    assert case is not None
    return _record(session, book, case, fulfilment_event(message, case, at), at)


def letter_failed(session: Session, book: Rulebook, message: OutboxMessage, at: datetime, why: str) -> bool:
    """A letter failed for good or came back: the worker gets a task (the ``failed_letter`` clock)."""
    if message.case_id is None or message.duty is None:
        return False
    case = session.get(Case, message.case_id)
    assert case is not None
    data = {
        "id": f"{SOURCE}:failed:{message.id}",
        "case": case.ref,
        "type": "letter.failed",
        "at": at.isoformat(),
        "outbox": message.id,
        "duty": message.duty,
        "why": why[:500] or "failed",
    }
    return _record(session, book, case, data, at)


def _record(session: Session, book: Rulebook, case: Case, data: dict[str, object], at: datetime) -> bool:
    if session.scalar(select(ReceivedEvent.id).where(ReceivedEvent.event_id == data["id"])):
        return False
    row = ReceivedEvent(
        event_id=str(data["id"]),
        claimed_id=str(data["id"]),
        case_ref=case.ref,
        type=str(data["type"]),
        occurred_at=at,
        raw=json.dumps(data),
        status="accepted",
        source=SOURCE,
        line_no=0,
        attempts=1,
        received_at=at,
        accepted_at=at,
    )
    session.add(row)
    session.flush()
    casework.apply(session, book, validate_event(data), row.id)
    return True
