"""Reminders and escalation: who hears about which clock on which working day.

Once per working day, at the first sweep within office hours, caseloop plans the day's reminders
and folds them into one digest per person (announced together as :class:`DigestsOwed`; messaging
makes each an outbox message). The steps for a clock due on D:

- a *warning* to the allocated worker ``warn_working_days_before`` working days before D;
- a *due* reminder to the worker on D;
- after D (breached): a *breach* reminder to the worker and an *escalation* to the team manager,
  and ``escalate_to_service_manager_after`` working days later an escalation to the service
  manager; while the clock stays breached each of them is reminded again once a working day.

Clocks on unallocated cases (and a leaver's) go to the team manager; what no one in the staff
directory can take goes to the policy's ``fallback_manager``. An acknowledged reminder stops the repeats
to that person for that clock until the next escalation step. Every item and every digest has a
unique key, so two sweepers, or one run twice, plan each reminder once.

Planning works through the due clocks in chunks (``Settings.plan_chunk``), each chunk one short
transaction with one bulk insert, so a borough of a hundred thousand clocks never holds a
long transaction or a session full of objects; the day's :class:`ReminderDay` is written last,
with the digests, so a pass that dies halfway is resumed by the next one, never duplicated.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Date,
    ForeignKey,
    Insert,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from workflow import bulk
from workflow.bus import publish
from workflow.calendar import WorkingCalendar
from workflow.clocks import ClockStatus, Rulebook
from workflow.db import Base, Database, UTCDateTime
from workflow.errors import Forbidden, NotFound
from workflow.happened import DigestOwed, DigestsOwed
from workflow.model import Case, ClockRow
from workflow.policy import ReminderPolicy
from workflow.staff import Role, Staff

DIGEST_KIND = "reminder_digest"
FALLBACK_ROLE = "fallback_manager"  # a reminder item's role when the directory had no one else
# When one person would get two steps for one clock on one day, the more serious one stands.
_RANK = {"warning": 0, "due": 1, "breach": 2, "escalation": 3}


class ReminderItem(Base):
    __tablename__ = "reminder_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    clock_id: Mapped[int] = mapped_column(ForeignKey("clocks.id"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    recipient: Mapped[str] = mapped_column(String(64))
    recipient_role: Mapped[str] = mapped_column(String(32))
    step: Mapped[str] = mapped_column(String(16))
    # One-off steps use the step's name; repeats add the day, so each is planned once.
    step_key: Mapped[str] = mapped_column(String(48))
    stage: Mapped[int] = mapped_column(Integer)
    for_date: Mapped[date] = mapped_column(Date)
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("clock_id", "recipient", "step_key", name="uq_reminder_item_once"),)


class ReminderAck(Base):
    __tablename__ = "reminder_acks"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("reminder_items.id"))
    clock_id: Mapped[int] = mapped_column(ForeignKey("clocks.id"), index=True)
    staff_id: Mapped[str] = mapped_column(String(64))
    stage: Mapped[int] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReminderDay(Base):
    """A working day whose reminders have been planned: the day's digests exist."""

    __tablename__ = "reminder_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    planned_at: Mapped[datetime] = mapped_column(UTCDateTime)
    digests: Mapped[int] = mapped_column(Integer)


@dataclass(frozen=True)
class Step:
    target: str  # worker | team_manager | service_manager
    name: str  # warning | due | breach | escalation


def steps_for(
    due: date, today: date, calendar: WorkingCalendar, policy: ReminderPolicy
) -> tuple[int, list[Step]]:
    """The escalation stage of a clock due on ``due`` and the steps it calls for on ``today``."""
    if today < due:
        left = calendar.working_days_between(today, due)
        return 0, [Step("worker", "warning")] if left <= policy.warn_working_days_before else []
    if today == due:
        return 0, [Step("worker", "due")]
    steps = [Step("worker", "breach"), Step("team_manager", "escalation")]
    overdue = calendar.working_days_between(due, today)
    if overdue >= 1 + policy.escalate_to_service_manager_after:
        return 2, [*steps, Step("service_manager", "escalation")]
    return 1, steps


def in_office_hours(book: Rulebook, now: datetime) -> bool:
    """Whether reminders may go out now: a working day, within office hours, in local time."""
    if now.tzinfo is None:
        raise ValueError("refusing a naive datetime: office hours are checked on an aware instant")
    local = now.astimezone(book.zone)
    policy = book.policy.reminders
    open_today = policy.days == "all" or book.calendar.is_working_day(local.date())
    return open_today and policy.office_hours.start <= local.time() < policy.office_hours.end


@dataclass(frozen=True)
class PlanReport:
    planned: bool
    items: int = 0
    digests: int = 0
    why: str = ""
    unrouted: int = 0  # clocks that called for a reminder no one in the directory could take


PLAN_CHUNK = 1000  # clocks planned per transaction (the default of settings' plan_chunk)


@dataclass(frozen=True)
class _Due:
    """What planning needs of one clock and its case: no ORM objects, so a chunk stays light."""

    clock_id: int
    due_on: date
    case_id: int
    worker: str | None
    team: str


def plan_day(
    db: Database, book: Rulebook, now: datetime, channel: str, *, chunk: int = PLAN_CHUNK
) -> PlanReport:
    """Plan today's reminders once: the items in chunks of ``chunk`` clocks, each chunk its own
    short transaction, then one transaction that makes the digests and marks the day planned.

    Safe to run twice at once or again after a crash halfway: each chunk skips the (clock,
    person) pairs that already have an item today and inserts with the items' unique key deciding
    a race, and the digests are made only by the pass that writes the day's :class:`ReminderDay`
    (which folds in any items an earlier, interrupted pass left without a digest).
    """
    if chunk < 1:
        raise ValueError(f"plan chunk must be at least 1 clock, not {chunk}")
    if not in_office_hours(book, now):
        return PlanReport(False, why="outside office hours or not a working day")
    today = book.local_date(now)
    with db.reading() as session:
        if session.get(ReminderDay, today) is not None:
            return PlanReport(False, why="already planned today")
        directory = _Directory(session, today, book.policy.reminders.fallback_manager)

    unrouted, after = 0, 0
    while True:
        with db.transaction() as session:
            # Another pass finished the day meanwhile: an item written now would have no digest.
            if session.get(ReminderDay, today) is not None:
                return PlanReport(False, why="already planned today")
            dues = _due_clocks(session, book, today, after, chunk)
            if not dues:
                break
            rows, missed = _plan_chunk(session, book, today, now, directory, dues)
            if rows:
                _insert_once(session, rows, today, now)
            unrouted += missed
            after = dues[-1].clock_id
    return _fold_into_digests(db, today, now, channel, directory, unrouted)


def _due_clocks(session: Session, book: Rulebook, today: date, after: int, chunk: int) -> list[_Due]:
    """The next ``chunk`` running or breached clocks (by id, after ``after``) that may call for a
    reminder today."""
    policy = book.policy.reminders
    horizon = today  # the last due date a warning can be about, then a week's slack for weekends
    for _ in range(policy.warn_working_days_before):
        horizon = book.calendar.next_working_day(horizon)
    horizon += timedelta(days=7)  # filtered exactly by steps_for
    query = (
        select(ClockRow.id, ClockRow.due_on, Case.id, Case.worker, Case.team)
        .join(Case, Case.id == ClockRow.case_id)
        .where(
            ClockRow.id > after,
            ClockRow.status.in_([ClockStatus.RUNNING.value, ClockStatus.BREACHED.value]),
            ClockRow.due_on <= horizon,
        )
        .order_by(ClockRow.id)
        .limit(chunk)
    )
    if policy.clocks:
        query = query.where(ClockRow.name.in_(policy.clocks))
    return [_Due(*row) for row in session.execute(query)]


def _plan_chunk(
    session: Session,
    book: Rulebook,
    today: date,
    now: datetime,
    directory: _Directory,
    dues: list[_Due],
) -> tuple[list[dict[str, Any]], int]:
    """The item rows one chunk of clocks calls for today, and how many clocks reached no one."""
    policy = book.policy.reminders
    # The chunk's clocks are the due ones among a run of ids: what the other clocks of that run
    # hold is read too and never looked up, and a range is a far cheaper query than a long IN.
    ids = (dues[0].clock_id, dues[-1].clock_id)
    done, today_done = _existing_keys(session, ids, today)
    acked = _acked_stages(session, ids)
    rows: list[dict[str, Any]] = []
    unrouted = 0
    for due in dues:
        stage, steps = steps_for(due.due_on, today, book.calendar, policy)
        chosen: dict[str, tuple[Step, str]] = {}
        for step in steps:
            for person, role in directory.recipients(due.worker, due.team, step.target):
                held = chosen.get(person.id)
                if held is None or _RANK[step.name] > _RANK[held[0].name]:
                    chosen[person.id] = (step, role)
        if steps and not chosen:
            unrouted += 1  # no one to tell, and no fallback manager: the sweep says so
        for person_id, (step, role) in chosen.items():
            if (due.clock_id, person_id) in today_done:
                continue  # planned by an earlier pass today (one that stopped before the digests)
            key = step.name if step.name in ("warning", "due", "breach") else f"escalation:{step.target}"
            if (due.clock_id, person_id, key) in done:
                if stage == 0 or acked.get((due.clock_id, person_id), -1) >= stage:
                    continue  # warnings and due-day reminders go once; acknowledged repeats stop
                key = f"repeat:{today.isoformat()}"
            rows.append(
                {
                    "clock_id": due.clock_id,
                    "case_id": due.case_id,
                    "recipient": person_id,
                    "recipient_role": role,
                    "step": "repeat" if key.startswith("repeat") else step.name,
                    "step_key": key,
                    "stage": stage,
                    "for_date": today,
                    "created_at": now,
                }
            )
    return rows, unrouted


_ITEM_KEY = ["clock_id", "recipient", "step_key"]
_ITEMS: Table = ReminderItem.__table__  # type: ignore[assignment]
# What differs between a chunk's items; the day and the time are the same for all of them.
_ITEM_VALUES = [
    _ITEMS.c[name]
    for name in ("clock_id", "case_id", "recipient", "recipient_role", "step", "step_key", "stage")
]
_GIVEN_ITEMS = bulk.unnested(_ITEM_VALUES)
_INSERT_ITEMS_PG = (
    postgresql.insert(_ITEMS)
    .from_select(
        [*_ITEM_VALUES, _ITEMS.c.for_date, _ITEMS.c.created_at],
        select(
            *(_GIVEN_ITEMS.c[c.key] for c in _ITEM_VALUES),
            bindparam("for_date", type_=Date),
            bindparam("created_at", type_=UTCDateTime),
        ),
    )
    .on_conflict_do_nothing(index_elements=_ITEM_KEY)
)


def _insert_once(session: Session, rows: list[dict[str, Any]], today: date, now: datetime) -> None:
    """Insert a chunk's items in one statement; an item another pass wrote first is left as it is.

    Not a multi-row ``VALUES``: compiling a statement with thousands of values cost more than the
    planning itself (see :mod:`workflow.bulk`)."""
    if session.get_bind().dialect.name == "postgresql":
        given = bulk.as_arrays(_ITEM_VALUES, rows)
        session.execute(_INSERT_ITEMS_PG, {**given, "for_date": today, "created_at": now})
        return
    session.execute(sqlite.insert(ReminderItem).on_conflict_do_nothing(index_elements=_ITEM_KEY), rows)


def _fold_into_digests(
    db: Database, today: date, now: datetime, channel: str, directory: _Directory, unrouted: int
) -> PlanReport:
    """Mark the day planned and fold its items into one digest per person, in one transaction.

    Writing the day's row first decides between two passes: the second waits on the first's row
    and then writes nothing, so only one of them makes digests."""
    with db.transaction() as session:
        marker = {"day": today, "planned_at": now, "digests": 0}
        won = session.execute(_day_once(session, marker)).rowcount  # type: ignore[attr-defined]
        if not won:
            return PlanReport(False, why="already planned today")
        per_person: dict[str, list[int]] = defaultdict(list)
        for item_id, person_id in session.execute(
            select(ReminderItem.id, ReminderItem.recipient)
            .where(ReminderItem.for_date == today, ReminderItem.outbox_id.is_(None))
            .order_by(ReminderItem.recipient, ReminderItem.id)
        ):
            per_person[person_id].append(item_id)
        owed = tuple(DigestOwed(directory.everyone[p], tuple(ids)) for p, ids in per_person.items())
        if owed:
            publish(session, DigestsOwed(today, owed, channel, now))
        session.execute(update(ReminderDay).where(ReminderDay.day == today).values(digests=len(per_person)))
    count = sum(len(v) for v in per_person.values())
    return PlanReport(True, items=count, digests=len(per_person), unrouted=unrouted)


def _day_once(session: Session, marker: dict[str, Any]) -> Insert:
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(ReminderDay).values(marker).on_conflict_do_nothing(index_elements=["day"])
    return sqlite.insert(ReminderDay).values(marker).on_conflict_do_nothing(index_elements=["day"])


class _Directory:
    """Staff lookups for one planning pass (the staff list is small; read it once).

    Only staff still present ``today`` are reminded. A leaver's cases are unallocated: what would
    have gone to them goes to their manager. What no one in the directory can take (a team or
    worker it does not know, a team with no manager left) goes to the policy's fallback manager.
    """

    def __init__(self, session: Session, today: date, fallback: str | None) -> None:
        self.everyone = {s.id: s for s in session.scalars(select(Staff))}
        self.staff = {k: s for k, s in self.everyone.items() if s.present_on(today)}
        self.fallback = self.staff.get(fallback or "")
        # Sorted once: a planning pass asks for a team's managers once per clock.
        self._roles: dict[tuple[str, str], list[Staff]] = defaultdict(list)
        for person in sorted(self.staff.values(), key=lambda s: s.id):
            self._roles[(person.team, person.role)].append(person)

    def _of_role(self, team: str, role: Role) -> list[Staff]:
        return self._roles.get((team, role.value), [])

    def team_managers(self, worker_id: str | None, team: str) -> list[Staff]:
        # A leaver's manager still manages their cases, so look the worker up among everyone.
        worker = self.everyone.get(worker_id or "")
        manager = self.staff.get(worker.manager_id or "") if worker else None
        if manager is not None and manager.role == Role.TEAM_MANAGER.value:
            return [manager]
        return self._of_role(team, Role.TEAM_MANAGER)

    def service_managers(self, worker_id: str | None, team: str) -> list[Staff]:
        found = []
        for manager in self.team_managers(worker_id, team):
            boss = self.staff.get(manager.manager_id or "")
            if boss is not None and boss.role == Role.SERVICE_MANAGER.value:
                found.append(boss)
        return found or self._of_role(team, Role.SERVICE_MANAGER)

    def recipients(self, worker_id: str | None, team: str, target: str) -> list[tuple[Staff, str]]:
        """Who hears of a step aimed at ``target`` for a case of ``team`` allocated to ``worker_id``."""
        if target == "worker":
            worker = self.staff.get(worker_id or "")
            if worker is not None:
                return [(worker, "worker")]
            target = "team_manager"  # unallocated, a leaver's, or a worker caseloop does not know
        if target == "team_manager":
            found = [(m, "team_manager") for m in self.team_managers(worker_id, team)]
        else:
            found = [(m, "service_manager") for m in self.service_managers(worker_id, team)]
        if not found and self.fallback is not None:
            return [(self.fallback, FALLBACK_ROLE)]
        return found


def _existing_keys(
    session: Session, clock_ids: tuple[int, int], today: date
) -> tuple[set[tuple[int, str, str]], set[tuple[int, str]]]:
    """The one-off keys the items of the clocks with ids from ``clock_ids[0]`` to ``clock_ids[1]``
    already hold, and the (clock, person) pairs that have an item today: one query, which never
    reads the clocks' past daily repeats."""
    keys: set[tuple[int, str, str]] = set()
    planned_today: set[tuple[int, str]] = set()
    rows = session.execute(
        select(
            ReminderItem.clock_id, ReminderItem.recipient, ReminderItem.step_key, ReminderItem.for_date
        ).where(
            ReminderItem.clock_id.between(*clock_ids),
            ReminderItem.step_key.not_like("repeat:%") | (ReminderItem.for_date == today),
        )
    )
    for clock_id, recipient, key, day in rows:
        keys.add((clock_id, recipient, key))
        if day == today:
            planned_today.add((clock_id, recipient))
    return keys, planned_today


def _acked_stages(session: Session, clock_ids: tuple[int, int]) -> dict[tuple[int, str], int]:
    """The highest stage each person acknowledged of each clock with an id in the range."""
    rows = session.execute(
        select(ReminderAck.clock_id, ReminderAck.staff_id, func.max(ReminderAck.stage))
        .where(ReminderAck.clock_id.between(*clock_ids))
        .group_by(ReminderAck.clock_id, ReminderAck.staff_id)
    )
    return {(clock_id, staff_id): stage for clock_id, staff_id, stage in rows}


class NotYours(Forbidden):
    """Someone tried to acknowledge a reminder that was not sent to them."""


def acknowledge(
    session: Session, item_id: int, staff_id: str, note: str | None, now: datetime
) -> ReminderAck:
    """Record that ``staff_id`` has seen reminder ``item_id``; repeats to them stop for that clock."""
    item = session.get(ReminderItem, item_id)
    if item is None:
        raise NotFound(f"no reminder {item_id}")
    if item.recipient != staff_id:
        raise NotYours(f"reminder {item_id} was sent to {item.recipient}, not {staff_id}")
    # Acknowledging an older reminder covers the clock as it stands now for this person.
    latest = session.scalar(
        select(func.max(ReminderItem.stage)).where(
            ReminderItem.clock_id == item.clock_id, ReminderItem.recipient == staff_id
        )
    )
    stage = max(item.stage, latest or 0)
    ack = ReminderAck(
        item_id=item.id, clock_id=item.clock_id, staff_id=staff_id, stage=stage, note=note, at=now
    )
    session.add(ack)
    session.flush()
    return ack
