"""Locking a letter to change its status: its case first, then the letter.

A change of status can reach into the case: a letter sent may fulfil its duty, a letter failed
gives the case's worker a task, and both lock the case row to apply caseloop's own event. The
intake locks a case and then its letters. Were a delivery to lock the letter and then its case,
the two would wait for each other (PostgreSQL ends one), so a delivery takes the case's lock first,
in the order the intake does. A letter's case never changes, so reading it unlocked is safe.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from messaging.outbox import OutboxMessage
from workflow.model import Case


def locked(session: Session, outbox_id: int) -> OutboxMessage | None:
    """The letter ``outbox_id``, locked after its case (a digest, which has none, alone)."""
    case_id = session.scalar(select(OutboxMessage.case_id).where(OutboxMessage.id == outbox_id))
    if case_id is not None:
        session.execute(select(Case.id).where(Case.id == case_id).with_for_update())
    return session.get(OutboxMessage, outbox_id, with_for_update=True)
