"""The read side: what the CLI and (later) staff pages show. Queries only; nothing is written."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from workflow.clocks import ClockStatus, Rulebook
from workflow.errors import NotFound
from workflow.model import Case, ClockRow, HistoryEntry
from workflow.staff import Staff


def case_view(
    session: Session, book: Rulebook, ref: str, now: datetime, visible: ColumnElement[bool] | None = None
) -> dict[str, Any]:
    """A case's state and clocks (current episode first), without names or addresses. A case
    outside ``visible`` is not found, exactly as one that does not exist."""
    query = select(Case).where(Case.ref == ref)
    case = session.scalar(query if visible is None else query.where(visible))
    if case is None:
        raise NotFound(f"no case {ref!r}")
    rows = session.scalars(
        select(ClockRow)
        .where(ClockRow.case_id == case.id)
        .order_by(ClockRow.episode.desc(), ClockRow.started_at, ClockRow.id)
    ).all()
    today = book.local_date(now)
    history = session.scalar(
        select(HistoryEntry.id).where(HistoryEntry.case_id == case.id).order_by(HistoryEntry.id.desc())
    )
    return {
        "case": case.ref,
        "state": case.state,
        "episode": case.episode,
        "team": case.team,
        "worker": case.worker,
        "referral_source": case.referral_source,
        "referred": book.local_date(case.referral_at).isoformat(),
        "decision": case.decision,
        "closure_reason": case.closure_reason,
        "flags": case.flags,
        "clocks": [_clock_view(book, c, today) for c in rows],
        "last_history_entry": history,
    }


def _clock_view(book: Rulebook, clock: ClockRow, today: Any) -> dict[str, Any]:
    rule = book.policy.clock(clock.name)
    status = clock.status
    if status == ClockStatus.RUNNING and clock.due_on < today:
        status = ClockStatus.BREACHED  # past due even if no tick has marked it yet
    return {
        "name": clock.name,
        "label": rule.label if rule else clock.name,
        "episode": clock.episode,
        "seq": clock.seq,
        "started": book.local_date(clock.started_at).isoformat(),
        "counted_from": clock.counted_from.isoformat(),
        "due": clock.due_on.isoformat(),
        "status": str(status),
        "stopped": clock.stopped_on.isoformat() if clock.stopped_on else None,
        "policy_version": clock.policy_version,
    }


@dataclass(frozen=True)
class OverdueClock:
    """One row of the overdue queue: the columns it shows, and the ids to explain it by."""

    clock_id: int
    case_id: int
    ref: str
    name: str
    episode: int
    due_on: date
    team: str
    worker: str | None
    known: bool  # the worker is in the staff directory
    present: bool  # ...and still with the council today
    left_on: date | None


def _overdue_where(today: date, team: str | None, visible: ColumnElement[bool] | None) -> list[Any]:
    found: list[Any] = [
        ClockRow.status.in_([ClockStatus.RUNNING.value, ClockStatus.BREACHED.value]),
        ClockRow.due_on < today,
    ]
    if team is not None:
        found.append(ClockRow.team == team)  # the case's team, as the clock keeps it (indexed)
    if visible is not None:
        found.append(visible)
    return found


def overdue_clocks(
    session: Session,
    book: Rulebook,
    now: datetime,
    limit: int | None,
    offset: int = 0,
    team: str | None = None,
    visible: ColumnElement[bool] | None = None,
) -> tuple[int, list[OverdueClock]]:
    """How many clocks are past their due date and still running (within ``visible``), and
    ``limit`` of them (None: all) from ``offset``, most overdue first: counted, sorted and cut in
    SQL, so a queue of any size costs one page of rows."""
    if offset < 0 or (limit is not None and limit < 1):
        raise ValueError("a page starts at an offset of 0 or more and holds at least one row")
    today = book.local_date(now)
    where = _overdue_where(today, team, visible)
    # The count reads neither the directory nor the columns shown, nor the cases unless who may
    # see them limits it: the counting clocks are then counted from their index alone.
    counted = select(func.count()).select_from(ClockRow)
    if visible is not None:
        counted = counted.join(Case, Case.id == ClockRow.case_id)
    counted = counted.where(*where)
    total = int(session.scalar(counted) or 0)
    if total <= offset:
        return total, []
    # Most overdue first: the earliest due date is the most working days overdue; the clock's
    # id last, so that pages never repeat or skip a row. The case's reference as the clock keeps
    # it: the order of the index of counting clocks, so that a page is its first rows, its cases
    # then read one a row.
    query = (
        select(
            ClockRow.id.label("clock_id"),
            ClockRow.case_id,
            ClockRow.case_ref.label("ref"),
            ClockRow.name,
            ClockRow.episode,
            ClockRow.due_on,
            Case.team,
            Case.worker,
            Staff.id.label("staff_id"),
            Staff.present_on_sql(today).label("present"),
            Staff.left_on,
        )
        .join(Case, Case.id == ClockRow.case_id)
        .outerjoin(Staff, Staff.id == Case.worker)
        .where(*where)
    )
    paged = (
        query.order_by(ClockRow.due_on, ClockRow.case_ref, ClockRow.name, ClockRow.id)
        .offset(offset)
        .limit(limit)
    )
    rows = [
        OverdueClock(
            r.clock_id,
            r.case_id,
            r.ref,
            r.name,
            r.episode,
            r.due_on,
            r.team,
            r.worker,
            r.staff_id is not None,
            bool(r.present),
            r.left_on,
        )
        for r in session.execute(paged)
    ]
    return total, rows


def overdue_row(book: Rulebook, clock: OverdueClock, today: date) -> dict[str, Any]:
    return {
        "case": clock.ref,
        "clock": clock.name,
        "due": clock.due_on.isoformat(),
        "working_days_overdue": book.calendar.working_days_between(clock.due_on, today),
        "worker": clock.worker,
        "allocation": allocation_words(clock.worker, clock.known, clock.present, clock.left_on),
        "team": clock.team,
    }


def staff_directory(session: Session) -> dict[str, Staff]:
    """Everyone on record, leavers included (their cases must say they left)."""
    return {s.id: s for s in session.scalars(select(Staff))}


def allocation(case: Case, people: dict[str, Staff], today: date) -> str:
    """Who has the case, in words: the worker, or why it is unallocated."""
    person = people.get(case.worker) if case.worker else None
    return allocation_words(
        case.worker,
        person is not None,
        person is not None and person.present_on(today),
        person.left_on if person else None,
    )


def allocation_words(worker: str | None, known: bool, present: bool, left_on: date | None) -> str:
    """:func:`allocation` from the worker's id and what the directory says of them (read in the
    queue's own query, ``present`` being :meth:`Staff.present_on_sql`)."""
    if not worker:
        return "unallocated"
    if not known:
        return f"unallocated: worker {worker} is not in the staff directory"
    if not present:
        left = f" on {left_on.isoformat()}" if left_on else ""
        return f"unallocated: {worker} left{left}"
    return worker
