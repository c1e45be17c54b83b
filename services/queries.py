"""The read side: a case, the overdue queue, the outbox. Each in a reading unit of work, and
each limited to what the actor may see (a case it may not see is not found)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from messaging import lateness
from messaging.outbox import OutboxMessage, Status
from services.actors import Actor, Kind
from services.authorisation import Action, authorise, visible_cases
from services.runtime import Runtime
from workflow import queries
from workflow.errors import Invalid
from workflow.model import Case


def case(rt: Runtime, actor: Actor, ref: str, now: datetime | None = None) -> dict[str, Any]:
    """A case's state and clocks, without names or addresses."""
    authorise(actor, Action.READ_CASE)
    with rt.reading() as uow:
        return queries.case_view(uow.session, rt.book, ref, now or rt.clock(), visible_cases(actor))


def case_exists(rt: Runtime, actor: Actor, ref: str) -> bool:
    """Whether a case the actor may see has this reference."""
    authorise(actor, Action.READ_CASE)
    with rt.reading() as uow:
        found = uow.session.scalar(select(Case.id).where(Case.ref == ref, visible_cases(actor)))
    return found is not None


def overdue(
    rt: Runtime, actor: Actor, team: str | None = None, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Clocks past their due date, most overdue first: who has each case (or why nobody does),
    why it is late and what to do (the commands name the actor, or STAFF for the operator)."""
    authorise(actor, Action.READ_CASE)
    now = now or rt.clock()
    today = rt.book.local_date(now)
    by = actor.id if actor.kind is Kind.STAFF else "STAFF"
    with rt.reading() as uow:
        clocks = queries.overdue_clocks(uow.session, rt.book, now, team, visible_cases(actor))
        people = queries.staff_directory(uow.session)
        notes = lateness.explain(uow.session, rt.book, clocks, by)
        return [
            {**queries.overdue_row(rt.book, clock, case, today, people), **notes[clock.id].as_dict()}
            for clock, case in clocks
        ]


def outbox(
    rt: Runtime, actor: Actor, case: str | None = None, status: str | None = None
) -> list[dict[str, Any]]:
    """Outgoing messages, newest first. Staff see the letters of cases they may see and their
    own digests."""
    authorise(actor, Action.READ_OUTBOX)
    if status is not None and status not in {s.value for s in Status}:
        raise Invalid(f"--status: {status!r} is not one of {', '.join(s.value for s in Status)}")
    query = select(OutboxMessage, Case.ref).outerjoin(Case, Case.id == OutboxMessage.case_id)
    if actor.kind is not Kind.SYSTEM:
        mine = OutboxMessage.case_id.is_(None) & (OutboxMessage.recipient == actor.id)
        seen = OutboxMessage.case_id.is_not(None) & visible_cases(actor)
        query = query.where(seen | mine) if actor.kind is Kind.STAFF else query.where(seen)
    if case is not None:
        query = query.where(Case.ref == case)
    if status is not None:
        query = query.where(OutboxMessage.status == status)
    with rt.reading() as uow:
        return [
            {
                "id": m.id,
                "case": ref,
                "kind": m.kind,
                "recipient_role": m.recipient_role,
                "recipient": m.recipient,
                "channel": m.channel,
                "status": m.status,
                "attempts": m.attempts,
                "created": m.created_at.isoformat(),
                "sent": m.sent_at.isoformat() if m.sent_at else None,
                "last_error": m.last_error,
            }
            for m, ref in uow.session.execute(query.order_by(OutboxMessage.id.desc()))
        ]
