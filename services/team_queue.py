"""The team queue: what a team or service manager needs to keep their teams' deadlines.

- the clocks of their teams' cases that are overdue, or at risk (due within
  :data:`AT_RISK_WORKING_DAYS` working days), the statutory timescales apart from the letter
  duties and local clocks, filtered, sorted, counted and paged in SQL;
- the open cases nobody has (no worker, or a worker who has left), oldest referral first;
- each present member of the team's caseload: open cases and overdue clocks, counted in SQL.

Only team and service managers have a team queue: a social worker's cases are under their own
work. Everything shown is also limited by :func:`services.authorisation.visible_cases`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, case, func, not_, or_, select, union_all
from sqlalchemy.orm import Session

from messaging import lateness
from services.actors import Actor, Kind
from services.authorisation import Action, authorise, sees_every_case_of, visible_in_teams
from services.runtime import Runtime
from workflow import queries
from workflow.calendar import WorkingCalendar
from workflow.clocks import ClockStatus, Rulebook
from workflow.errors import Forbidden, Invalid
from workflow.lifecycle import OPEN_STATES, TRANSITIONS
from workflow.model import Case, ClockRow
from workflow.policy import STATUTORY_CLOCKS
from workflow.staff import Role, Staff

# A clock still running is "at risk" when it is due today or on one of the next this many
# working days (the page says so).
AT_RISK_WORKING_DAYS = 2

# The worker filter's value for clocks of cases nobody has (no worker, or one who has left).
UNALLOCATED = "unallocated"

# A clock counts while it runs; a paused one is not counting down, so it is neither late nor at risk.
COUNTING = (ClockStatus.RUNNING.value, ClockStatus.BREACHED.value)

# The states in which a case can be allocated (the lifecycle's own rule: a case decided "no
# further action" waits only for its closure and takes no allocation).
ALLOCATABLE = frozenset(
    state.value for t in TRANSITIONS if t.event == "worker.allocated" for state in t.sources
)
OPEN = sorted(state.value for state in OPEN_STATES)


class Status(StrEnum):
    OVERDUE = "overdue"
    AT_RISK = "at_risk"
    ALL = "all"


class Sort(StrEnum):
    MOST_OVERDUE = "most_overdue"  # the earliest due date first
    LATEST_DUE = "latest_due"
    WORKER = "worker"
    CASE = "case"


class Table(StrEnum):
    """The queue's two tables: the statutory timescales, and the letter duties with the local
    clocks (a letter or a task that caseloop tracks being done)."""

    STATUTORY = "statutory"
    DUTIES = "duties"


@dataclass(frozen=True)
class QueueFilter:
    team: str | None = None
    worker: str | None = None  # a staff id, UNALLOCATED, or None for everyone
    clock: str | None = None
    status: Status = Status.ALL
    sort: Sort = Sort.MOST_OVERDUE


T = TypeVar("T")


@dataclass(frozen=True)
class Rows(Generic[T]):
    """Some rows of a list paged in SQL: ``items`` from ``offset``, of ``total``."""

    items: list[T]
    total: int
    offset: int


@dataclass(frozen=True)
class QueueRow:
    clock_id: int
    case: str
    team: str
    clock: str
    label: str
    worker: str | None  # the worker who has the case, or None when nobody does
    allocation: str  # the worker's id, or why the case is unallocated
    due: date
    overdue: bool
    working_days: int  # overdue by, or left before the due date
    reason: str  # why it is late, or what is waiting (messaging.lateness)


@dataclass(frozen=True)
class UnallocatedRow:
    case: str
    team: str
    state: str
    referred: date
    why: str


@dataclass(frozen=True)
class Caseload:
    staff_id: str
    name: str
    role: str
    team: str
    open_cases: int
    overdue_clocks: int


@dataclass(frozen=True)
class Person:
    staff_id: str
    name: str
    team: str


@dataclass(frozen=True)
class Choices:
    """What the filters offer: the teams managed, their present staff, the policy's clocks."""

    teams: list[str]
    people: list[Person]
    clocks: list[tuple[str, str]]  # (name, label)


def teams_of(actor: Actor) -> frozenset[str]:
    """The teams whose queue ``actor`` manages, or :class:`Forbidden` for anyone else."""
    authorise(actor, Action.READ_CASE)
    if actor.kind is Kind.STAFF and actor.role is Role.TEAM_MANAGER and actor.team:
        return frozenset({actor.team})
    if actor.kind is Kind.STAFF and actor.role is Role.SERVICE_MANAGER and actor.teams:
        return actor.teams
    role = actor.role.value.replace("_", " ") if actor.role else "not a manager"
    own = ", whose own cases are under My work" if actor.role is Role.SOCIAL_WORKER else ""
    raise Forbidden(f"the team queue is for team managers and service managers: {actor.id} is a {role}{own}")


def choices(rt: Runtime, actor: Actor, now: datetime | None = None) -> Choices:
    teams = teams_of(actor)
    today = rt.book.local_date(now or rt.clock())
    with rt.reading() as uow:
        people = _present_staff(uow.session, teams, today)
    clocks = [(rule.name, rule.label) for rule in rt.book.policy.rules]
    return Choices(sorted(teams), people, clocks)


def _present_staff(session: Session, teams: frozenset[str], today: date) -> list[Person]:
    query = (
        select(Staff.id, Staff.name, Staff.team)
        .where(Staff.team.in_(sorted(teams)), Staff.present_on_sql(today))
        .order_by(Staff.team, Staff.name, Staff.id)
    )
    return [Person(sid, name, team) for sid, name, team in session.execute(query)]


def parse_filter(
    found: Choices,
    *,
    team: str = "",
    worker: str = "",
    clock: str = "",
    status: str = "",
    sort: str = "",
) -> QueueFilter:
    """The queue's filters from a form's words, each checked against what the actor may pick
    (``found``, from :func:`choices`); :class:`Invalid` names every one that is not."""
    problems = []
    if team and team not in found.teams:
        problems.append(f"team: {team!r} is not one of your teams ({', '.join(found.teams)})")
    if worker and worker != UNALLOCATED and worker not in {p.staff_id for p in found.people}:
        problems.append(f"worker: {worker!r} is not a present member of your teams")
    if clock and clock not in {name for name, _ in found.clocks}:
        problems.append(f"clock: {clock!r} is not a clock of the policy")
    if status and status not in {s.value for s in Status}:
        problems.append(f"status: {status!r} is not one of {', '.join(s.value for s in Status)}")
    if sort and sort not in {s.value for s in Sort}:
        problems.append(f"sort: {sort!r} is not one of {', '.join(s.value for s in Sort)}")
    if problems:
        raise Invalid("; ".join(problems))
    return QueueFilter(
        team=team or None,
        worker=worker or None,
        clock=clock or None,
        status=Status(status) if status else Status.ALL,
        sort=Sort(sort) if sort else Sort.MOST_OVERDUE,
    )


def at_risk_until(calendar: WorkingCalendar, today: date) -> date:
    """The last due date that is at risk today: the AT_RISK_WORKING_DAYS-th working day after
    today (whatever the council's counting rule for goals)."""
    day = today
    for _ in range(AT_RISK_WORKING_DAYS):
        day = calendar.next_working_day(day)
    return day


def _scope(actor: Actor, team: str | None, column: ColumnElement[str] | None = None) -> ColumnElement[bool]:
    teams = teams_of(actor)
    return visible_in_teams(actor, {team} if team else teams, column)


def _clock_scope(actor: Actor, team: str | None) -> ColumnElement[bool]:
    # On the clock's own copy of its case's team: the counting clocks are indexed by it.
    return _scope(actor, team, ClockRow.team.expression)


def _nobody_has(today: date) -> ColumnElement[bool]:
    """A case whose worker is missing, unknown to the directory or gone (outer-joined ``staff``)."""
    return or_(Case.worker.is_(None), Staff.id.is_(None), not_(Staff.present_on_sql(today)))


# The queue's columns: only those the page shows, the ids to explain a row by, and what the
# directory says of the worker (in the directory at all, still with the council, left when).
_QueueQuery = Select[int, int, int, str, date, str, str, str | None, str | None, bool, date | None]


def _queue_query(book: Rulebook, actor: Actor, table: Table, f: QueueFilter, today: date) -> _QueueQuery:
    statutory = ClockRow.name.in_(sorted(STATUTORY_CLOCKS))
    query = (
        select(
            ClockRow.id,
            ClockRow.case_id,
            ClockRow.episode,
            ClockRow.name,
            ClockRow.due_on,
            Case.ref,
            Case.team,
            Case.worker,
            Staff.id.label("staff_id"),
            Staff.present_on_sql(today).label("present"),
            Staff.left_on,
        )
        .join(Case, Case.id == ClockRow.case_id)
        .outerjoin(Staff, Staff.id == Case.worker)
        .where(
            ClockRow.status.in_(COUNTING),
            statutory if table is Table.STATUTORY else not_(statutory),
            _clock_scope(actor, f.team),
        )
    )
    horizon = at_risk_until(book.calendar, today)
    if f.status is Status.OVERDUE:
        query = query.where(ClockRow.due_on < today)
    elif f.status is Status.AT_RISK:
        query = query.where(ClockRow.due_on >= today, ClockRow.due_on <= horizon)
    else:
        query = query.where(ClockRow.due_on <= horizon)
    if f.worker == UNALLOCATED:
        query = query.where(_nobody_has(today))
    elif f.worker is not None:
        query = query.where(Case.worker == f.worker)
    if f.clock is not None:
        query = query.where(ClockRow.name == f.clock)
    return query


def _counted(actor: Actor, f: QueueFilter, query: _QueueQuery) -> Select[int]:
    """How many rows ``query`` selects. When nothing but the clock decides whether it is in (all
    the teams' cases are visible, no worker chosen), the clocks are counted alone, from the
    index of the counting clocks by team, without reaching for each clock's case."""
    teams = {f.team} if f.team else teams_of(actor)
    if f.worker is None and sees_every_case_of(actor, teams):
        # The query's conditions are then all on the clock (its team among them).
        where = query.whereclause
        assert where is not None  # the queue's query always has its conditions
        return select(func.count()).select_from(ClockRow).where(where)
    return select(func.count()).select_from(query.order_by(None).subquery())


def _ordered(query: _QueueQuery, sort: Sort, today: date) -> _QueueQuery:
    # Every order ends on the clock's id, so paging never repeats or skips a row.
    if sort is Sort.LATEST_DUE:
        keys: tuple[Any, ...] = (ClockRow.due_on.desc(), Case.ref, ClockRow.name)
    elif sort is Sort.WORKER:
        # The cases nobody has first (a leaver's too), then by the worker's name (never NULL
        # here: SQLite and PostgreSQL put NULLs at opposite ends).
        worker = case((_nobody_has(today), ""), else_=func.coalesce(Staff.name, ""))
        keys = (worker, ClockRow.due_on, Case.ref)
    elif sort is Sort.CASE:
        keys = (Case.ref, ClockRow.due_on, ClockRow.name)
    else:
        keys = (ClockRow.due_on, Case.ref, ClockRow.name)
    return query.order_by(*keys, ClockRow.id)


def queue(
    rt: Runtime,
    actor: Actor,
    table: Table,
    filters: QueueFilter,
    limit: int,
    offset: int = 0,
    now: datetime | None = None,
) -> Rows[QueueRow]:
    """One table of the queue: ``limit`` rows from ``offset`` of the clocks that match."""
    now = now or rt.clock()
    today = rt.book.local_date(now)
    query = _queue_query(rt.book, actor, table, filters, today)
    with rt.reading() as uow:
        total = uow.session.scalar(_counted(actor, filters, query)) or 0
        shown = uow.session.execute(_ordered(query, filters.sort, today).offset(offset).limit(limit)).all()
        # Only the page is explained (why each is late), from the ids and names already read.
        late = [lateness.LateClock(r.id, r.case_id, r.ref, r.episode, r.name) for r in shown]
        notes = lateness.explain_clocks(uow.session, rt.book, late, actor.id, pages="")
    items = []
    for row in shown:
        known = row.staff_id is not None
        allocation = queries.allocation_words(row.worker, known, bool(row.present), row.left_on)
        rule = rt.book.policy.clock(row.name)
        late_now = row.due_on < today
        items.append(
            QueueRow(
                clock_id=row.id,
                case=row.ref,
                team=row.team,
                clock=row.name,
                label=rule.label if rule else row.name,
                worker=row.worker if allocation == row.worker else None,
                allocation=allocation,
                due=row.due_on,
                overdue=late_now,
                working_days=(
                    rt.book.calendar.working_days_between(row.due_on, today)
                    if late_now
                    else rt.book.calendar.working_days_between(today, row.due_on)
                ),
                reason=notes[row.id].reason,
            )
        )
    return Rows(items, total, offset)


def unallocated(
    rt: Runtime,
    actor: Actor,
    team: str | None,
    limit: int,
    offset: int = 0,
    now: datetime | None = None,
) -> Rows[UnallocatedRow]:
    """Open cases that nobody has and that can be allocated, oldest referral first."""
    today = rt.book.local_date(now or rt.clock())
    query = (
        select(Case.ref, Case.team, Case.state, Case.referral_at, Case.worker, Staff.id, Staff.left_on)
        .outerjoin(Staff, Staff.id == Case.worker)
        .where(Case.state.in_(sorted(ALLOCATABLE)), _scope(actor, team), _nobody_has(today))
    )
    with rt.reading() as uow:
        total = uow.session.scalar(select(func.count()).select_from(query.subquery())) or 0
        paged = query.order_by(Case.referral_at, Case.ref).offset(offset).limit(limit)
        items = [
            UnallocatedRow(ref, case_team, state, rt.book.local_date(referred), _why(worker, known, left_on))
            for ref, case_team, state, referred, worker, known, left_on in uow.session.execute(paged)
        ]
    return Rows(items, total, offset)


def _why(worker: str | None, known: str | None, left_on: date | None) -> str:
    if worker is None:
        return "no worker allocated"
    if known is None:
        return f"worker {worker} is not in the staff directory"
    return f"{worker} left" + (f" on {left_on.isoformat()}" if left_on else "")


def caseloads(rt: Runtime, actor: Actor, team: str | None, now: datetime | None = None) -> list[Caseload]:
    """Each present member of the teams, with their open cases and overdue clocks (a team's
    staff are tens, not thousands: the list is not paged)."""
    teams = teams_of(actor)
    today = rt.book.local_date(now or rt.clock())
    scope = _scope(actor, team)
    cases = (
        select(Case.worker.label("worker"), func.count(Case.id).label("n"))
        .where(Case.state.in_(OPEN), scope)
        .group_by(Case.worker)
        .subquery()
    )
    # The overdue clocks, by the worker of their case. Nearly all are of open cases, whose worker
    # the index of open cases by team holds (the two indexes are joined, no case row read); the
    # few others (a letter still owed after its case closed) are those whose case is not among
    # them, and only their cases are read one by one.
    overdue = (ClockRow.status.in_(COUNTING), ClockRow.due_on < today, _clock_scope(actor, team))
    open_ids = select(Case.id).where(Case.state.in_(OPEN), scope)
    of_open = (
        select(Case.worker.label("worker"), ClockRow.id.label("clock_id"))
        .join(Case, Case.id == ClockRow.case_id)
        .where(*overdue, Case.state.in_(OPEN), scope)
    )
    of_others = (
        select(Case.worker, ClockRow.id)
        .join(Case, Case.id == ClockRow.case_id)
        .where(*overdue, ClockRow.case_id.not_in(open_ids))
    )
    late_clocks = union_all(of_open, of_others).subquery()
    late = (
        select(late_clocks.c.worker, func.count(late_clocks.c.clock_id).label("n"))
        .group_by(late_clocks.c.worker)
        .subquery()
    )
    query = (
        select(
            Staff.id,
            Staff.name,
            Staff.role,
            Staff.team,
            func.coalesce(cases.c.n, 0),
            func.coalesce(late.c.n, 0),
        )
        .outerjoin(cases, cases.c.worker == Staff.id)
        .outerjoin(late, late.c.worker == Staff.id)
        .where(Staff.team.in_(sorted({team} if team else teams)), Staff.present_on_sql(today))
        .order_by(Staff.team, Staff.name, Staff.id)
    )
    with rt.reading() as uow:
        return [
            Caseload(sid, name, role, member_team, int(n_open), int(n_late))
            for sid, name, role, member_team, n_open, n_late in uow.session.execute(query)
        ]
