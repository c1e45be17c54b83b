"""Reminders and escalation: who hears about which clock on which working day.

Once per working day, at the first sweep within office hours, caseloop plans the day's reminders
and folds them into one digest per person (announced as :class:`DigestOwed`; messaging makes it
an outbox message). The steps for a clock due on D:

- a *warning* to the allocated worker ``warn_working_days_before`` working days before D;
- a *due* reminder to the worker on D;
- after D (breached): a *breach* reminder to the worker and an *escalation* to the team manager,
  and ``escalate_to_service_manager_after`` working days later an escalation to the service
  manager; while the clock stays breached each of them is reminded again once a working day.

Clocks on unallocated cases (and a leaver's) go to the team manager; what no one in the staff
directory can take goes to the policy's ``fallback_manager``. An acknowledged reminder stops the repeats
to that person for that clock until the next escalation step. Every item and every digest has a
unique key, so two sweepers, or one run twice, plan each reminder once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Date, ForeignKey, Integer, String, Text, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from workflow.bus import publish
from workflow.calendar import WorkingCalendar
from workflow.clocks import ClockStatus, Rulebook
from workflow.db import Base, UTCDateTime
from workflow.errors import Forbidden, NotFound
from workflow.happened import DigestOwed
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


def plan_day(session: Session, book: Rulebook, now: datetime, channel: str) -> PlanReport:
    """Plan today's reminders once, in the caller's transaction. Returns what it created."""
    if not in_office_hours(book, now):
        return PlanReport(False, why="outside office hours or not a working day")
    today = book.local_date(now)
    if session.get(ReminderDay, today) is not None:
        return PlanReport(False, why="already planned today")

    policy = book.policy.reminders
    horizon = today  # the last due date a warning can be about, then a week's slack for weekends
    for _ in range(policy.warn_working_days_before):
        horizon = book.calendar.next_working_day(horizon)
    horizon += timedelta(days=7)  # filtered exactly by steps_for below
    query = (
        select(ClockRow, Case)
        .join(Case, Case.id == ClockRow.case_id)
        .where(
            ClockRow.status.in_([ClockStatus.RUNNING.value, ClockStatus.BREACHED.value]),
            ClockRow.due_on <= horizon,
        )
        .order_by(ClockRow.id)
    )
    if policy.clocks:
        query = query.where(ClockRow.name.in_(policy.clocks))
    candidates = session.execute(query).all()
    directory = _Directory(session, today, policy.fallback_manager)
    clock_ids = [clock.id for clock, _ in candidates]
    done = _existing_keys(session, clock_ids)
    acked = _acked_stages(session, clock_ids)

    per_person: dict[str, list[ReminderItem]] = defaultdict(list)
    unrouted = 0
    for clock, case in candidates:
        stage, steps = steps_for(clock.due_on, today, book.calendar, policy)
        chosen: dict[str, tuple[Step, str]] = {}
        for step in steps:
            for person, role in directory.recipients(case, step.target):
                held = chosen.get(person.id)
                if held is None or _RANK[step.name] > _RANK[held[0].name]:
                    chosen[person.id] = (step, role)
        if steps and not chosen:
            unrouted += 1  # no one to tell, and no fallback manager: the sweep says so
        for person_id, (step, role) in chosen.items():
            key = step.name if step.name in ("warning", "due", "breach") else f"escalation:{step.target}"
            if (clock.id, person_id, key) in done:
                if stage == 0 or acked.get((clock.id, person_id), -1) >= stage:
                    continue  # warnings and due-day reminders go once; acknowledged repeats stop
                key = f"repeat:{today.isoformat()}"
                if (clock.id, person_id, key) in done:
                    continue
            item = ReminderItem(
                clock_id=clock.id,
                case_id=case.id,
                recipient=person_id,
                recipient_role=role,
                step="repeat" if key.startswith("repeat") else step.name,
                step_key=key,
                stage=stage,
                for_date=today,
                created_at=now,
            )
            session.add(item)
            per_person[person_id].append(item)

    session.flush()  # the items have ids: the digest lists them
    for person_id, items in per_person.items():
        owed = DigestOwed(directory.staff[person_id], today, tuple(i.id for i in items), channel, now)
        publish(session, owed)
    count = sum(len(v) for v in per_person.values())
    session.add(ReminderDay(day=today, planned_at=now, digests=len(per_person)))
    session.flush()
    return PlanReport(True, items=count, digests=len(per_person), unrouted=unrouted)


class _Directory:
    """Staff lookups for one planning pass (the staff list is small; read it once).

    Only staff still present ``today`` are reminded. A leaver's cases are unallocated: what would
    have gone to them goes to their manager. What no one in the directory can take (a team or
    worker it does not know, a team with no manager left) goes to the policy's fallback manager.
    """

    def __init__(self, session: Session, today: date, fallback: str | None) -> None:
        self.everyone = {s.id: s for s in session.scalars(select(Staff))}
        self.staff = {k: s for k, s in self.everyone.items() if s.present_on(today)}
        self.by_team: dict[str, list[Staff]] = defaultdict(list)
        for person in self.staff.values():
            self.by_team[person.team].append(person)
        self.fallback = self.staff.get(fallback or "")

    def _of_role(self, team: str, role: Role) -> list[Staff]:
        return sorted((s for s in self.by_team.get(team, []) if s.role == role.value), key=lambda s: s.id)

    def team_managers(self, case: Case) -> list[Staff]:
        # A leaver's manager still manages their cases, so look the worker up among everyone.
        worker = self.everyone.get(case.worker or "")
        manager = self.staff.get(worker.manager_id or "") if worker else None
        if manager is not None and manager.role == Role.TEAM_MANAGER.value:
            return [manager]
        return self._of_role(case.team, Role.TEAM_MANAGER)

    def service_managers(self, case: Case) -> list[Staff]:
        found = []
        for manager in self.team_managers(case):
            boss = self.staff.get(manager.manager_id or "")
            if boss is not None and boss.role == Role.SERVICE_MANAGER.value:
                found.append(boss)
        return found or self._of_role(case.team, Role.SERVICE_MANAGER)

    def recipients(self, case: Case, target: str) -> list[tuple[Staff, str]]:
        if target == "worker":
            worker = self.staff.get(case.worker or "")
            if worker is not None:
                return [(worker, "worker")]
            target = "team_manager"  # unallocated, a leaver's, or a worker caseloop does not know
        if target == "team_manager":
            found = [(m, "team_manager") for m in self.team_managers(case)]
        else:
            found = [(m, "service_manager") for m in self.service_managers(case)]
        if not found and self.fallback is not None:
            return [(self.fallback, FALLBACK_ROLE)]
        return found


def _existing_keys(session: Session, clock_ids: list[int]) -> set[tuple[int, str, str]]:
    keys: set[tuple[int, str, str]] = set()
    for chunk in _chunks(clock_ids):
        rows = session.execute(
            select(ReminderItem.clock_id, ReminderItem.recipient, ReminderItem.step_key).where(
                ReminderItem.clock_id.in_(chunk)
            )
        )
        keys.update((c, r, k) for c, r, k in rows)
    return keys


def _acked_stages(session: Session, clock_ids: list[int]) -> dict[tuple[int, str], int]:
    stages: dict[tuple[int, str], int] = {}
    for chunk in _chunks(clock_ids):
        for clock_id, staff_id, stage in session.execute(
            select(ReminderAck.clock_id, ReminderAck.staff_id, ReminderAck.stage).where(
                ReminderAck.clock_id.in_(chunk)
            )
        ):
            stages[(clock_id, staff_id)] = max(stage, stages.get((clock_id, staff_id), -1))
    return stages


def _chunks(ids: list[int], size: int = 500) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


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
