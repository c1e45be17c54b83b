"""The read side: a case, the overdue queue, the outbox. Each in a reading unit of work, and
each limited to what the actor may see (a case it may not see is not found)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, false, func, select, true
from sqlalchemy.orm import Session

from messaging import lateness
from messaging.outbox import OutboxMessage, Status
from services.actors import Actor, Kind
from services.authorisation import Action, authorise, visible_cases
from services.runtime import Runtime
from workflow import queries
from workflow.errors import Invalid, NotFound
from workflow.model import Case

OUTBOX_STATUSES = tuple(s.value for s in Status)


def case(rt: Runtime, actor: Actor, ref: str, now: datetime | None = None) -> dict[str, Any]:
    """A case's state and clocks, without names or addresses."""
    authorise(actor, Action.READ_CASE)
    if not _may_be_a_ref(ref):
        raise NotFound(f"no case {ref!r}")  # the words of a case that does not exist
    with rt.reading() as uow:
        return queries.case_view(uow.session, rt.book, ref, now or rt.clock(), visible_cases(actor))


def _may_be_a_ref(ref: str) -> bool:
    # PostgreSQL refuses a NUL in any query, so such a reference is not looked up (a URL can hold one).
    return "\x00" not in ref


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
    why it is late and what to do (the commands name the actor, or STAFF for the operator).
    The whole queue, read a page at a time in one transaction (each page explained on its own)."""
    authorise(actor, Action.READ_CASE)
    now = now or rt.clock()
    found: list[dict[str, Any]] = []
    with rt.reading() as uow:
        while True:
            total, items = _overdue_rows(uow.session, rt, actor, OVERDUE_BATCH, len(found), team, now)
            found.extend(items)
            if len(found) >= total or not items:
                return found


# How many overdue clocks the whole queue reads at a time.
OVERDUE_BATCH = 500


@dataclass(frozen=True)
class Page:
    """Some of a list: ``items`` from ``offset``, at most ``limit`` (None: all), of ``total``."""

    items: list[dict[str, Any]]
    total: int
    limit: int | None
    offset: int


def overdue_page(
    rt: Runtime,
    actor: Actor,
    limit: int | None,
    offset: int = 0,
    team: str | None = None,
    now: datetime | None = None,
) -> Page:
    """The overdue queue (as :func:`overdue`) from ``offset``, at most ``limit`` rows: counted,
    sorted and cut in SQL, so only the page's clocks are read and explained."""
    authorise(actor, Action.READ_CASE)
    now = now or rt.clock()
    with rt.reading() as uow:
        total, items = _overdue_rows(uow.session, rt, actor, limit, offset, team, now)
    return Page(items, total, limit, offset)


def _overdue_rows(
    session: Session,
    rt: Runtime,
    actor: Actor,
    limit: int | None,
    offset: int,
    team: str | None,
    now: datetime,
) -> tuple[int, list[dict[str, Any]]]:
    by = actor.id if actor.kind is Kind.STAFF else "STAFF"
    today = rt.book.local_date(now)
    # The system sees every case: no condition on cases at all, so the clocks are counted alone.
    visible = None if actor.kind is Kind.SYSTEM else visible_cases(actor)
    total, shown = queries.overdue_clocks(session, rt.book, now, limit, offset, team, visible)
    late = [lateness.LateClock(c.clock_id, c.case_id, c.ref, c.episode, c.name) for c in shown]
    notes = lateness.explain_clocks(session, rt.book, late, by)  # only the page is explained
    items = [
        {**queries.overdue_row(rt.book, clock, today), **notes[clock.clock_id].as_dict()} for clock in shown
    ]
    return total, items


def visible_messages(actor: Actor) -> ColumnElement[bool]:
    """Which outbox rows ``actor`` may see, as a SQL condition on ``outbox`` outer-joined to
    ``cases``: the letters of cases it may see and, for staff, the digests sent to them."""
    if actor.kind is Kind.SYSTEM:
        return true()
    seen = OutboxMessage.case_id.is_not(None) & visible_cases(actor)
    if actor.kind is not Kind.STAFF:
        return seen
    mine = OutboxMessage.case_id.is_(None) & (OutboxMessage.recipient == actor.id)
    return seen | mine


def outbox(
    rt: Runtime, actor: Actor, case: str | None = None, status: str | None = None
) -> list[dict[str, Any]]:
    """Outgoing messages, newest first. Staff see the letters of cases they may see and their
    own digests."""
    return outbox_page(rt, actor, None, 0, case, status).items


def outbox_page(
    rt: Runtime,
    actor: Actor,
    limit: int | None,
    offset: int = 0,
    case: str | None = None,
    status: str | None = None,
) -> Page:
    """The outbox (as :func:`outbox`) from ``offset``, at most ``limit`` messages."""
    authorise(actor, Action.READ_OUTBOX)
    if status is not None and status not in {s.value for s in Status}:
        raise Invalid(f"--status: {status!r} is not one of {', '.join(s.value for s in Status)}")
    query = select(OutboxMessage, Case.ref).outerjoin(Case, Case.id == OutboxMessage.case_id)
    query = query.where(visible_messages(actor))
    if case is not None:
        query = query.where(Case.ref == case if _may_be_a_ref(case) else false())
    if status is not None:
        query = query.where(OutboxMessage.status == status)
    paged = query.order_by(OutboxMessage.id.desc()).offset(offset).limit(limit)
    with rt.reading() as uow:
        total = uow.session.scalar(select(func.count()).select_from(query.subquery())) or 0
        items = [
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
            for m, ref in uow.session.execute(paged)
        ]
    return Page(items, total, limit, offset)
