"""The tables of the case side: cases, received events, the case history and clocks.

Personal data (names, addresses, dates of birth) lives only in ``cases`` JSON columns and in the
raw received events; history rows and clocks carry ids, codes and dates.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from workflow.db import Base, UTCDateTime
from workflow.queue_indexes import (
    cases_open_by_team,
    clocks_counting_by_due,
    clocks_counting_by_team,
    clocks_live,
    clocks_live_by_duty,
)


class Case(Base):
    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(64), unique=True)
    state: Mapped[str] = mapped_column(String(32))
    episode: Mapped[int] = mapped_column(Integer, default=1)
    team: Mapped[str] = mapped_column(String(64), index=True)
    worker: Mapped[str | None] = mapped_column(String(64), index=True)
    referral_at: Mapped[datetime] = mapped_column(UTCDateTime)
    referral_source: Mapped[str] = mapped_column(String(4))
    decision: Mapped[str | None] = mapped_column(String(32))
    assessment_started: Mapped[bool] = mapped_column(Boolean, default=False)
    assessment_completed: Mapped[bool] = mapped_column(Boolean, default=False)
    factors: Mapped[list[str]] = mapped_column(JSON, default=list)
    flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    child: Mapped[dict[str, Any]] = mapped_column(JSON)
    referrer: Mapped[dict[str, Any]] = mapped_column(JSON)
    household: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closure_reason: Mapped[str | None] = mapped_column(String(8))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When each kind of fact (the state, the worker, the household …) last changed, by the time
    # of the event that changed it: an older event arriving late never overwrites a newer fact.
    fact_times: Mapped[dict[str, str] | None] = mapped_column(JSON, default=dict)

    __table_args__ = (cases_open_by_team(),)


class Episode(Base):
    """An earlier episode of a case as it stood when the case was referred again: the letters
    that episode still owes are filled from it, never from the episode that followed."""

    __tablename__ = "episodes"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    episode: Mapped[int] = mapped_column(Integer)
    facts: Mapped[dict[str, Any]] = mapped_column(JSON)
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("case_id", "episode", name="uq_episodes_case_episode"),)


class ReceivedEvent(Base):
    """Every line received, accepted or not: nothing received is lost."""

    __tablename__ = "received_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Malformed lines do not claim their id, so the corrected line can be sent with the same id.
    event_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    claimed_id: Mapped[str | None] = mapped_column(String(128))
    case_ref: Mapped[str | None] = mapped_column(String(64), index=True)
    type: Mapped[str | None] = mapped_column(String(64))
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    raw: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # a ReceivedStatus
    rejection_kind: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(255))
    line_no: Mapped[int] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A rejection a person set aside for good: who, when and why (it is never retried again).
    dismissed_by: Mapped[str | None] = mapped_column(String(64))
    dismissed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dismissal: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_received_events_status", "status", "rejection_kind"),)


class HistoryEntry(Base):
    """The append-only case history (the database refuses updates and deletes)."""

    __tablename__ = "case_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    episode: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("received_events.id"))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ClockRow(Base):
    __tablename__ = "clocks"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    # The case's team, copied here so that a team's queue reads its clocks by team alone rather
    # than through every case the team ever had (most closed). It always equals the case's team:
    # set when the clock starts and rewritten whenever the case moves (workflow.clocks.follow_team).
    team: Mapped[str] = mapped_column(String(64))
    # The case's reference, copied for the same reason: the overdue queue sorts by it and the
    # open loops show it, read from the clocks' indexes without the cases. A case's reference is
    # never changed, so the copy, set when the clock starts, stays equal to it.
    case_ref: Mapped[str] = mapped_column(String(64))
    episode: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer, default=1)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    counted_from: Mapped[date] = mapped_column(Date)  # day 0 of the count
    due_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stopped_on: Mapped[date | None] = mapped_column(Date)
    paused_on: Mapped[date | None] = mapped_column(Date)
    paused_days: Mapped[int] = mapped_column(Integer, default=0)
    policy_version: Mapped[str] = mapped_column(String(64))
    calendar_version: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("case_id", "episode", "name", "seq", name="uq_clocks_case_episode_name_seq"),
        Index("ix_clocks_status_due", "status", "due_on"),
        Index("ix_clocks_case", "case_id", "episode"),
        clocks_live(),
        clocks_counting_by_due(),
        clocks_counting_by_team(),
        clocks_live_by_duty(),
    )
