"""The audit sample's tables: the cases drawn each month, and what the auditor found in each.

A finding is never overwritten: a correction is a new row, so every answer given, by whom and
when, is kept, and the newest row of a sampled case is its finding. Rows carry ids, codes and
the auditor's notes; names stay in ``cases``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    ColumnElement,
    ForeignKey,
    Index,
    String,
    Subquery,
    Text,
    UniqueConstraint,
    case,
    func,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from workflow.db import Base, UTCDateTime
from workflow.model import Case


class Answer(StrEnum):
    YES = "yes"
    NO = "no"
    NOT_APPLICABLE = "not_applicable"


class AuditSample(Base):
    """A case drawn for the audit of ``month`` (``YYYY-MM``), with the team it was drawn from."""

    __tablename__ = "audit_samples"

    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[str] = mapped_column(String(7))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    team: Mapped[str] = mapped_column(String(64))
    drawn_at: Mapped[datetime] = mapped_column(UTCDateTime)
    drawn_by: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        UniqueConstraint("month", "case_id", name="uq_audit_samples_month_case"),
        Index("ix_audit_samples_month_team", "month", "team"),
    )


class AuditFinding(Base):
    """One recording of what the auditor found in a sampled case (a correction adds another)."""

    __tablename__ = "audit_findings"

    id: Mapped[int] = mapped_column(primary_key=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("audit_samples.id"), index=True)
    family_told: Mapped[str] = mapped_column(String(16))  # an Answer
    referrer_told: Mapped[str] = mapped_column(String(16))  # an Answer
    letters_right: Mapped[str] = mapped_column(String(16))  # yes or no
    notes: Mapped[str] = mapped_column(Text, default="")
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


def _latest_findings() -> Subquery:
    """The newest finding of each sampled case (its id), as a subquery to join."""
    return (
        select(AuditFinding.sample_id, func.max(AuditFinding.id).label("finding_id"))
        .group_by(AuditFinding.sample_id)
        .subquery()
    )


def months_drawn(session: Session) -> set[str]:
    """The months whose sample has been drawn (for any team)."""
    return set(session.scalars(select(AuditSample.month).distinct()))


def sample_size(session: Session, month: str) -> int:
    """How many cases the month's sample holds, over every team."""
    return int(session.scalar(select(func.count(AuditSample.id)).where(AuditSample.month == month)) or 0)


def is_drawn(session: Session, month: str) -> bool:
    return session.scalar(select(AuditSample.id).where(AuditSample.month == month).limit(1)) is not None


@dataclass(frozen=True)
class SampledCase:
    """A sampled case as the month's page lists it, with its newest finding if there is one."""

    sample_id: int
    ref: str
    team: str
    worker: str | None
    finding: AuditFinding | None
    recordings: int  # how many times a finding was recorded (more than one: corrected)


def sampled_cases(session: Session, month: str, visible: ColumnElement[bool]) -> list[SampledCase]:
    """The month's sampled cases within ``visible``, by team and reference (a sample is at most
    a few dozen cases: the draw's size bounds it)."""
    latest = _latest_findings()
    recordings = (
        select(AuditFinding.sample_id, func.count(AuditFinding.id).label("n"))
        .group_by(AuditFinding.sample_id)
        .subquery()
    )
    query = (
        select(AuditSample.id, Case.ref, AuditSample.team, Case.worker, AuditFinding, recordings.c.n)
        .join(Case, Case.id == AuditSample.case_id)
        .outerjoin(latest, latest.c.sample_id == AuditSample.id)
        .outerjoin(AuditFinding, AuditFinding.id == latest.c.finding_id)
        .outerjoin(recordings, recordings.c.sample_id == AuditSample.id)
        .where(AuditSample.month == month, visible)
        .order_by(AuditSample.team, Case.ref)
    )
    return [
        SampledCase(sid, ref, team, worker, finding, int(n or 0))
        for sid, ref, team, worker, finding, n in session.execute(query)
    ]


def sample_of(session: Session, month: str, ref: str, visible: ColumnElement[bool]) -> AuditSample | None:
    """The sample row of case ``ref`` in ``month``, if it was drawn and is within ``visible``."""
    return session.scalar(
        select(AuditSample)
        .join(Case, Case.id == AuditSample.case_id)
        .where(AuditSample.month == month, Case.ref == ref, visible)
    )


def findings_of(session: Session, sample_ids: Collection[int]) -> dict[int, list[AuditFinding]]:
    """Every finding recorded for these sampled cases, oldest first (the history of corrections)."""
    found: dict[int, list[AuditFinding]] = {sid: [] for sid in sample_ids}
    if sample_ids:
        query = select(AuditFinding).where(AuditFinding.sample_id.in_(sorted(sample_ids)))
        for finding in session.scalars(query.order_by(AuditFinding.id)):
            found[finding.sample_id].append(finding)
    return found


@dataclass(frozen=True)
class MonthTotals:
    """A month's sample within what one person may see, and its newest findings added up.
    ``family_asked`` and ``referrer_asked`` leave out the cases where the question did not apply."""

    month: str
    sampled: int
    audited: int
    family_told: int
    family_asked: int
    referrer_told: int
    referrer_asked: int
    letters_right: int


def _count_when(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.sum(case((condition, 1), else_=0))


def month_totals(
    session: Session, visible: ColumnElement[bool], limit: int, offset: int
) -> tuple[list[MonthTotals], int]:
    """Each drawn month (newest first, ``limit`` from ``offset``) with its totals, and how many
    months there are; all counted in SQL."""
    latest = _latest_findings()
    yes, na = Answer.YES.value, Answer.NOT_APPLICABLE.value
    query = (
        select(
            AuditSample.month,
            func.count(AuditSample.id),
            func.count(AuditFinding.id),
            _count_when(AuditFinding.family_told == yes),
            _count_when(AuditFinding.family_told.is_not(None) & (AuditFinding.family_told != na)),
            _count_when(AuditFinding.referrer_told == yes),
            _count_when(AuditFinding.referrer_told.is_not(None) & (AuditFinding.referrer_told != na)),
            _count_when(AuditFinding.letters_right == yes),
        )
        .join(Case, Case.id == AuditSample.case_id)
        .outerjoin(latest, latest.c.sample_id == AuditSample.id)
        .outerjoin(AuditFinding, AuditFinding.id == latest.c.finding_id)
        .where(visible)
        .group_by(AuditSample.month)
    )
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(AuditSample.month.desc()).limit(limit).offset(offset))
    return [MonthTotals(row[0], *(int(n or 0) for n in row[1:])) for row in rows], int(total)
