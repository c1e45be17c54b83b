"""The read side: what the CLI and (later) staff pages show. Queries only; nothing is written."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, select
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


def overdue_clocks(
    session: Session,
    book: Rulebook,
    now: datetime,
    team: str | None = None,
    visible: ColumnElement[bool] | None = None,
) -> list[tuple[ClockRow, Case]]:
    """Clocks past their due date and still running, with their cases, most overdue first
    (within ``visible``)."""
    today = book.local_date(now)
    query = (
        select(ClockRow, Case)
        .join(Case, Case.id == ClockRow.case_id)
        .where(
            ClockRow.status.in_([ClockStatus.RUNNING.value, ClockStatus.BREACHED.value]),
            ClockRow.due_on < today,
        )
    )
    if team is not None:
        query = query.where(Case.team == team)
    if visible is not None:
        query = query.where(visible)
    rows = [(clock, case) for clock, case in session.execute(query)]
    # Most overdue first: the earliest due date is the most working days overdue.
    rows.sort(key=lambda r: (r[0].due_on, r[1].ref, r[0].name))
    return rows


def overdue_row(
    book: Rulebook, clock: ClockRow, case: Case, today: date, people: dict[str, Staff]
) -> dict[str, Any]:
    return {
        "case": case.ref,
        "clock": clock.name,
        "due": clock.due_on.isoformat(),
        "working_days_overdue": book.calendar.working_days_between(clock.due_on, today),
        "worker": case.worker,
        "allocation": allocation(case, people, today),
        "team": case.team,
    }


def staff_directory(session: Session) -> dict[str, Staff]:
    """Everyone on record, leavers included (their cases must say they left)."""
    return {s.id: s for s in session.scalars(select(Staff))}


def allocation(case: Case, people: dict[str, Staff], today: date) -> str:
    """Who has the case, in words: the worker, or why it is unallocated."""
    if not case.worker:
        return "unallocated"
    person = people.get(case.worker)
    if person is None:
        return f"unallocated: worker {case.worker} is not in the staff directory"
    if not person.present_on(today):
        left = f" on {person.left_on.isoformat()}" if person.left_on else ""
        return f"unallocated: {case.worker} left{left}"
    return case.worker
