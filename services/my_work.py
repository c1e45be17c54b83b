"""The read side of a member of staff's own work: the "My work" page.

Everything here is about the actor's own cases (``Case.worker == actor.id``) or addressed to
them (their reminders), and each list is paged in SQL: a count and one page of rows, selecting
only the columns shown. Working days come from the rulebook's calendar, counted from today in
the council's time zone, as the clocks and the digest count them.

- overdue clocks, most overdue first, with the working days they are overdue;
- clocks due within the next :data:`SOON_WORKING_DAYS` working days, with the working days left;
- reminders sent to the actor and not yet acknowledged (one row a clock: the latest reminder,
  whose acknowledgement covers the earlier ones, as :func:`workflow.reminders.acknowledge` does);
- letters on the actor's cases held for a person's review;
- duties no letter can do, which the actor must do by hand and record (a professional referrer
  with no email or address to phone, or a letter that failed and must reach them another way).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select

from messaging.lateness import FAILED_LETTER_CLOCK
from messaging.outbox import OutboxMessage, Status
from services.actors import Actor
from services.authorisation import Action, authorise, require_staff, visible_cases
from services.paging import Slice, page_of
from services.runtime import Runtime
from workflow.clocks import ACTIVE, ClockStatus, Rulebook
from workflow.duties import BY_PHONE
from workflow.model import Case, ClockRow, HistoryEntry
from workflow.reminders import ReminderAck, ReminderItem

SOON_WORKING_DAYS = 5  # "due in the next 5 working days", as the issue asks
COUNTING = (ClockStatus.RUNNING.value, ClockStatus.BREACHED.value)  # a paused clock is not counting
STILL_OPEN = tuple(s.value for s in ACTIVE)
FAILED_LETTER_TASK = "reach them another way: their letter failed or came back"


@dataclass(frozen=True)
class Deadline:
    case: str
    clock: str
    label: str
    due: date
    working_days: int  # overdue by (the overdue list) or left (the due-soon list; 0: due today)


@dataclass(frozen=True)
class Reminder:
    id: int
    case: str
    clock: str
    label: str
    due: date
    step: str  # warning | due | breach | escalation | repeat
    sent_for: date  # the day whose digest carried it
    role: str  # how it reached the actor: worker, team_manager, service_manager, fallback_manager


@dataclass(frozen=True)
class HeldLetter:
    id: int
    case: str
    kind: str
    duty: str | None
    duty_label: str | None
    recipient_role: str
    why: str
    made: date


@dataclass(frozen=True)
class HandDuty:
    case: str
    duty: str  # the name ``record_duty_done`` takes
    label: str
    task: str
    due: date
    overdue: bool
    working_days: int  # overdue by, or left


def _mine(actor: Actor) -> ColumnElement[bool]:
    # Allocated to the actor; ``visible_cases`` too, so nothing here can ever exceed what they may see.
    return and_(Case.worker == actor.id, visible_cases(actor))


def _check(actor: Actor) -> None:
    require_staff(actor, Action.READ_CASE)
    authorise(actor, Action.READ_CASE)  # refuses an admin-only login, which reads no case


def _label(book: Rulebook, name: str) -> str:
    rule = book.policy.clock(name)
    return rule.label if rule else name


def _today(rt: Runtime, now: datetime | None) -> date:
    return rt.book.local_date(now or rt.clock())


def _deadlines(
    rt: Runtime,
    actor: Actor,
    when: Callable[[date], ColumnElement[bool]],
    count: Callable[[date, date], int],
    offset: int,
    limit: int,
    now: datetime | None,
) -> Slice[Deadline]:
    _check(actor)
    today = _today(rt, now)
    query = (
        select(Case.ref, ClockRow.name, ClockRow.due_on)
        .join(Case, Case.id == ClockRow.case_id)
        .where(ClockRow.status.in_(COUNTING), when(today), _mine(actor))
        # The earliest due date first: for the overdue, the most working days overdue.
        .order_by(ClockRow.due_on, Case.ref, ClockRow.name, ClockRow.id)
    )
    with rt.reading() as uow:
        total, rows = page_of(uow.session, query, offset, limit)
    items = [Deadline(ref, name, _label(rt.book, name), due, count(today, due)) for ref, name, due in rows]
    return Slice(items, total, offset, limit)


def overdue(
    rt: Runtime, actor: Actor, offset: int, limit: int, now: datetime | None = None
) -> Slice[Deadline]:
    """The actor's clocks past their due date, most overdue first."""
    calendar = rt.book.calendar
    return _deadlines(
        rt,
        actor,
        lambda today: ClockRow.due_on < today,
        lambda today, due: calendar.working_days_between(due, today),
        offset,
        limit,
        now,
    )


def soon_until(book: Rulebook, today: date) -> date:
    """The last day of "the next :data:`SOON_WORKING_DAYS` working days" from ``today``."""
    day = today
    for _ in range(SOON_WORKING_DAYS):
        day = book.calendar.next_working_day(day)
    return day


def due_soon(
    rt: Runtime, actor: Actor, offset: int, limit: int, now: datetime | None = None
) -> Slice[Deadline]:
    """The actor's clocks due today or within the next working days, the soonest first."""
    calendar = rt.book.calendar
    return _deadlines(
        rt,
        actor,
        lambda today: ClockRow.due_on.between(today, soon_until(rt.book, today)),
        lambda today, due: calendar.working_days_between(today, due),
        offset,
        limit,
        now,
    )


def reminders(rt: Runtime, actor: Actor, offset: int, limit: int) -> Slice[Reminder]:
    """Reminders sent to the actor about clocks still open that they have not acknowledged: the
    latest a clock (acknowledging it covers the earlier ones), the earliest due first."""
    require_staff(actor, Action.ACKNOWLEDGE_REMINDER)
    authorise(actor, Action.ACKNOWLEDGE_REMINDER)
    latest = (
        select(func.max(ReminderItem.id))
        .where(ReminderItem.recipient == actor.id)
        .group_by(ReminderItem.clock_id)
    )
    acknowledged = exists().where(
        ReminderAck.clock_id == ReminderItem.clock_id,
        ReminderAck.staff_id == actor.id,
        ReminderAck.stage >= ReminderItem.stage,
    )
    query = (
        select(
            ReminderItem.id,
            Case.ref,
            ClockRow.name,
            ClockRow.due_on,
            ReminderItem.step,
            ReminderItem.for_date,
            ReminderItem.recipient_role,
        )
        .join(ClockRow, ClockRow.id == ReminderItem.clock_id)
        .join(Case, Case.id == ReminderItem.case_id)
        .where(ReminderItem.id.in_(latest), ~acknowledged, ClockRow.status.in_(STILL_OPEN))
        .order_by(ClockRow.due_on, Case.ref, ClockRow.name, ReminderItem.id)
    )
    with rt.reading() as uow:
        total, rows = page_of(uow.session, query, offset, limit)
    items = [
        Reminder(rid, ref, name, _label(rt.book, name), due, step, sent_for, role)
        for rid, ref, name, due, step, sent_for, role in rows
    ]
    return Slice(items, total, offset, limit)


def held_letters(rt: Runtime, actor: Actor, offset: int, limit: int) -> Slice[HeldLetter]:
    """Letters on the actor's cases waiting for a person's review, the oldest first."""
    _check(actor)
    authorise(actor, Action.READ_OUTBOX)
    query = (
        select(
            OutboxMessage.id,
            Case.ref,
            OutboxMessage.kind,
            OutboxMessage.duty,
            OutboxMessage.recipient_role,
            OutboxMessage.payload["hold_reasons"],
            OutboxMessage.last_error,
            OutboxMessage.created_at,
        )
        .join(Case, Case.id == OutboxMessage.case_id)
        .where(OutboxMessage.status == Status.HELD.value, _mine(actor))
        .order_by(OutboxMessage.created_at, OutboxMessage.id)
    )
    with rt.reading() as uow:
        total, rows = page_of(uow.session, query, offset, limit)
    items = [
        HeldLetter(
            mid,
            ref,
            kind,
            duty,
            _label(rt.book, duty) if duty else None,
            role,
            _why_held(reasons, last_error),
            rt.book.local_date(made),
        )
        for mid, ref, kind, duty, role, reasons, last_error, made in rows
    ]
    return Slice(items, total, offset, limit)


def _why_held(reasons: Any, last_error: str | None) -> str:
    if isinstance(reasons, Sequence) and not isinstance(reasons, str) and reasons:
        return "; ".join(str(r) for r in reasons)
    return last_error or "held for review"


def hand_duties(
    rt: Runtime, actor: Actor, offset: int, limit: int, now: datetime | None = None
) -> Slice[HandDuty]:
    """Duties on the actor's cases that no letter can do and whose clocks still run: each is
    recorded done (``services.casework.record_duty_done``) once the actor has done it. The most
    urgent first."""
    _check(actor)
    authorise(actor, Action.RECORD_DUTY)
    today = _today(rt, now)
    # A duty with nobody to write to is recorded as ``duty.by_hand`` in the clock's episode.
    task = (
        select(HistoryEntry.detail["task"].as_string())
        .where(
            HistoryEntry.case_id == ClockRow.case_id,
            HistoryEntry.episode == ClockRow.episode,
            HistoryEntry.kind == "duty.by_hand",
            HistoryEntry.detail["duty"].as_string() == ClockRow.name,
        )
        .order_by(HistoryEntry.id.desc())
        .limit(1)
        .correlate(ClockRow)
        .scalar_subquery()
    )
    query = (
        select(Case.ref, ClockRow.name, ClockRow.due_on, task)
        .join(Case, Case.id == ClockRow.case_id)
        .where(
            ClockRow.status.in_(STILL_OPEN),
            or_(ClockRow.name == FAILED_LETTER_CLOCK, task.is_not(None)),
            _mine(actor),
        )
        .order_by(ClockRow.due_on, Case.ref, ClockRow.name, ClockRow.id)
    )
    calendar = rt.book.calendar
    with rt.reading() as uow:
        total, rows = page_of(uow.session, query, offset, limit)
    items = []
    for ref, name, due, what in rows:
        late = due < today
        days = calendar.working_days_between(*((due, today) if late else (today, due)))
        words = what or (FAILED_LETTER_TASK if name == FAILED_LETTER_CLOCK else BY_PHONE)
        items.append(HandDuty(ref, name, _label(rt.book, name), words, due, late, days))
    return Slice(items, total, offset, limit)
