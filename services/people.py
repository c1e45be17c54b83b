"""Staff: who they are (the actor for a staff id), the staff list's import, and leavers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import exists, select

from messaging.lifecycle import move
from messaging.outbox import OutboxMessage, Status
from services.actors import Actor, staff_member
from services.authorisation import Action, authorise
from services.paging import Slice, page_of
from services.runtime import Runtime
from workflow import staff
from workflow.access import User
from workflow.reminders import DIGEST_KIND
from workflow.staff import Staff, StaffImportReport


def identify(rt: Runtime, staff_id: str) -> Actor:
    """The actor for an active member of staff; :class:`Forbidden` naming the id otherwise."""
    with rt.reading() as uow:
        return staff_member(uow.session, staff_id, rt.book.local_date(rt.clock()))


def import_staff(
    rt: Runtime, actor: Actor, lines: Iterable[str], now: datetime | None = None
) -> StaffImportReport:
    """Add or update staff (an idempotent upsert); bad rows are named and the rest taken."""
    authorise(actor, Action.IMPORT_STAFF)
    with rt.writing() as uow:
        report = staff.import_csv(uow.session, lines, now or rt.clock())
        uow.commit()
    return report


@dataclass(frozen=True)
class StaffView:
    """A member of staff as the admin page lists them."""

    id: str
    name: str
    role: str
    team: str
    present: bool  # still with the council today
    left_on: date | None  # their first day gone (past or to come), if a leaving day is recorded
    has_login: bool


def staff_page(
    rt: Runtime, actor: Actor, offset: int, limit: int, now: datetime | None = None
) -> Slice[StaffView]:
    """The staff directory by id, leavers included, one page at a time."""
    authorise(actor, Action.MANAGE_STAFF)
    today = rt.book.local_date(now or rt.clock())
    login = exists().where(User.staff_id == Staff.id, User.disabled_at.is_(None))
    query = select(
        Staff.id, Staff.name, Staff.role, Staff.team, Staff.present_on_sql(today), Staff.left_on, login
    ).order_by(Staff.id)
    with rt.reading() as uow:
        total, rows = page_of(uow.session, query, offset, limit)
    items = [
        StaffView(sid, name, role, team, bool(present), left, bool(has))
        for sid, name, role, team, present, left, has in rows
    ]
    return Slice(items, total, offset, limit)


@dataclass(frozen=True)
class Left:
    staff_id: str
    on: date
    before: date | None  # the leaving day recorded before (this corrected it), if any
    digests_cancelled: int


def leave(
    rt: Runtime, actor: Actor, staff_id: str, on: date | None = None, now: datetime | None = None
) -> Left:
    """Record that ``staff_id`` leaves on ``on`` (default: today). From that day they get no
    reminders or digests (those already waiting for that day or later are cancelled), their
    cases count as unallocated and go to their manager, and they may no longer act."""
    authorise(actor, Action.MANAGE_STAFF)
    now = now or rt.clock()
    today = rt.book.local_date(now)
    day = on or today
    with rt.writing() as uow:
        before = staff.leave(uow.session, staff_id, day, today, now)
        waiting = uow.session.scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.kind == DIGEST_KIND,
                OutboxMessage.recipient == staff_id,
                OutboxMessage.status == Status.QUEUED.value,
            )
            .with_for_update()
        ).all()
        cancelled = 0
        for digest in waiting:
            if date.fromisoformat(digest.payload["date"]) >= day:
                note = f"{staff_id} left on {day.isoformat()}"
                move(uow.session, digest, Status.CANCELLED, by=actor.name, at=now, note=note)
                cancelled += 1
        uow.commit()
    return Left(staff_id, day, before, cancelled)


def rejoin(rt: Runtime, actor: Actor, staff_id: str, now: datetime | None = None) -> None:
    """Bring a leaver back (the staff import never does): reminded, and may act, from now."""
    authorise(actor, Action.MANAGE_STAFF)
    with rt.writing() as uow:
        staff.rejoin(uow.session, staff_id, now or rt.clock())
        uow.commit()
