"""Timeliness in numbers: clocks due and met on time, and re-referrals, by month and team.

Everything is counted in SQL (``GROUP BY`` month and team): only counts leave the database, never
a case. A clock belongs to the month of its ``counted_from`` date (day 0 of its count, a local
date): the referral's month for a decision, an acknowledgement or an assessment (counted from
the referral), the decision's month for an outcome letter, the closure's for a closing letter.

A clock is *due* once it is decided: met (on time or late) whenever that was, or still unmet
after its due date. A clock still running before its due date is not counted yet, and a
cancelled clock (its path made it moot) never is. A duty's clock stops when its letters are
sent (:mod:`workflow.fulfilment` records the outbox's send as ``duty.fulfilled``) or when the
council records it done by hand, so its stop is the time the recipient was told.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

from sqlalchemy import (
    ColumnElement,
    Integer,
    SQLColumnExpression,
    and_,
    case,
    cast,
    extract,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session, aliased

from workflow.clocks import ACTIVE, ClockStatus
from workflow.model import Case, ClockRow

# The clock every referral starts (the policy's decision clock): one per episode, whose
# ``counted_from`` is the referral's local date. Referrals are counted by it.
REFERRAL_CLOCK = "decision"


@dataclass(frozen=True)
class Tally:
    """One measure's counts for one month (``YYYY-MM``) and team."""

    clock: str
    month: str
    team: str
    due: int
    on_time: int


def _year(column: SQLColumnExpression[date]) -> ColumnElement[int]:
    return cast(extract("year", column), Integer)


def _month(column: SQLColumnExpression[date]) -> ColumnElement[int]:
    return cast(extract("month", column), Integer)


def _day_number(column: SQLColumnExpression[date]) -> ColumnElement[int]:
    """A date as the number YYYYMMDD: ordered as dates are, and a year earlier is 10000 less,
    the same on SQLite and PostgreSQL (no dialect's date arithmetic needed)."""
    return _year(column) * 10000 + _month(column) * 100 + cast(extract("day", column), Integer)


def _month_text(year: int, month: int) -> str:
    return f"{int(year):04d}-{int(month):02d}"


def clock_tallies(
    session: Session,
    names: Collection[str],
    first: date,
    end: date,
    today: date,
    visible: ColumnElement[bool],
    team: str | None = None,
) -> list[Tally]:
    """For the clocks named ``names`` counted from ``first`` up to (not including) ``end``, within
    ``visible`` (and ``team``): how many were due by ``today`` and how many were met on time."""
    year, month = _year(ClockRow.counted_from), _month(ClockRow.counted_from)
    due = or_(
        ClockRow.status.in_([ClockStatus.MET.value, ClockStatus.MET_LATE.value]),
        and_(ClockRow.status.in_([s.value for s in ACTIVE]), ClockRow.due_on < today),
    )
    query = (
        select(
            ClockRow.name,
            year,
            month,
            Case.team,
            func.count(ClockRow.id),
            func.sum(case((ClockRow.status == ClockStatus.MET.value, 1), else_=0)),
        )
        .join(Case, Case.id == ClockRow.case_id)
        .where(
            ClockRow.name.in_(sorted(names)),
            ClockRow.counted_from >= first,
            ClockRow.counted_from < end,
            due,
            visible,
        )
        .group_by(ClockRow.name, year, month, Case.team)
    )
    if team is not None:
        query = query.where(Case.team == team)
    return [
        Tally(name, _month_text(y, m), team_, int(count), int(met or 0))
        for name, y, m, team_, count, met in session.execute(query)
    ]


def re_referral_tallies(
    session: Session,
    first: date,
    end: date,
    visible: ColumnElement[bool],
    team: str | None = None,
) -> list[Tally]:
    """Referrals received from ``first`` up to ``end`` (``due``) and how many of them were
    re-referrals within 12 months (``on_time``, for want of a better slot): the census's rule, a
    referral within 12 months of the child's previous referral (the case's episode before)."""
    this, before = aliased(ClockRow), aliased(ClockRow)
    year, month = _year(this.counted_from), _month(this.counted_from)
    previous = and_(
        before.case_id == this.case_id,
        before.name == REFERRAL_CLOCK,
        before.seq == 1,
        before.episode == this.episode - 1,
        # Within 12 calendar months (workflow.episodes.is_re_referral, in SQL): the previous
        # referral on or after the same day number a year earlier.
        _day_number(before.counted_from) >= _day_number(this.counted_from) - 10000,
    )
    query = (
        select(year, month, Case.team, func.count(this.id), func.count(before.id))
        .join(Case, Case.id == this.case_id)
        .outerjoin(before, previous)
        .where(
            this.name == REFERRAL_CLOCK,
            this.seq == 1,
            this.counted_from >= first,
            this.counted_from < end,
            visible,
        )
        .group_by(year, month, Case.team)
    )
    if team is not None:
        query = query.where(Case.team == team)
    return [
        Tally(REFERRAL_CLOCK, _month_text(y, m), team_, int(referrals), int(again))
        for y, m, team_, referrals, again in session.execute(query)
    ]


def referral_counts(
    session: Session, first: date, end: date, visible: ColumnElement[bool] | None = None
) -> dict[str, int]:
    """How many cases had a referral from ``first`` up to ``end``, by the team holding each."""
    query = (
        select(Case.team, func.count(func.distinct(ClockRow.case_id)))
        .join(Case, Case.id == ClockRow.case_id)
        .where(
            ClockRow.name == REFERRAL_CLOCK,
            ClockRow.seq == 1,
            ClockRow.counted_from >= first,
            ClockRow.counted_from < end,
        )
        .group_by(Case.team)
    )
    if visible is not None:
        query = query.where(visible)
    return {team: int(count) for team, count in session.execute(query)}


def referred_cases_at(
    session: Session, team: str, first: date, end: date, positions: Collection[int]
) -> list[tuple[int, str]]:
    """The ids and references of ``team``'s cases with a referral from ``first`` up to ``end`` at
    ``positions`` (from 0) in reference order: a draw picks positions, and only the cases picked
    are read, never the whole month."""
    if not positions:
        return []
    referred = (
        select(Case.id, Case.ref)
        .join(ClockRow, ClockRow.case_id == Case.id)
        .where(
            Case.team == team,
            ClockRow.name == REFERRAL_CLOCK,
            ClockRow.seq == 1,
            ClockRow.counted_from >= first,
            ClockRow.counted_from < end,
        )
        .distinct()
        .subquery()
    )
    numbered = select(
        referred.c.id, referred.c.ref, func.row_number().over(order_by=referred.c.ref).label("n")
    ).subquery()
    query = (
        select(numbered.c.id, numbered.c.ref)
        .where(numbered.c.n.in_(sorted(p + 1 for p in positions)))
        .order_by(numbered.c.ref)
    )
    return [(case_id, ref) for case_id, ref in session.execute(query)]
