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

from workflow import casework, limits
from workflow.clocks import Rulebook
from workflow.duties import fulfilment_event
from workflow.errors import ReceivedStatus
from workflow.events import validate_event
from workflow.fields import printable
from workflow.model import Case, ReceivedEvent

SOURCE = "caseloop"


def duty_letters_sent(
    session: Session, book: Rulebook, case_id: int, duty: str, source_event: str, at: datetime
) -> bool:
    """Record ``duty`` (owed because of ``source_event``) as fulfilled: its letters have gone.
    True if this recorded it, False if it was recorded before."""
    case = session.get(Case, case_id)
    assert case is not None
    return _record(session, book, case, fulfilment_event(duty, source_event, case, at), at)


def letter_failed(
    session: Session, book: Rulebook, case_id: int, outbox_id: int, duty: str, at: datetime, why: str
) -> bool:
    """A letter failed for good or came back: the worker gets a task (the ``failed_letter`` clock)."""
    case = session.get(Case, case_id)
    assert case is not None
    data = {
        "id": f"{SOURCE}:failed:{outbox_id}",
        "case": case.ref,
        "type": "letter.failed",
        "at": at.isoformat(),
        "outbox": outbox_id,
        "duty": duty,
        # A provider's error may span lines or hold control characters: one line, within limits.
        "why": printable(why)[: limits.WORDS] or "failed",
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
        status=ReceivedStatus.ACCEPTED.value,
        source=SOURCE,
        line_no=0,
        attempts=1,
        received_at=at,
        accepted_at=at,
    )
    session.add(row)
    session.flush()
    casework.apply(session, book, validate_event(data), row.id, by_caseloop=True)
    return True
