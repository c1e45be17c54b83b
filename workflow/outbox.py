"""The outbox: every outgoing message is a row before anything is queued.

A row's ``idempotency_key`` is unique, so whatever is redelivered or replayed creates a message
once. Statuses move ``queued`` → ``sending`` → ``sent`` | ``failed`` | ``unknown`` (and ``held``
for letters awaiting a person's review). The broker only ever carries a row's id.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from workflow.db import Base, UTCDateTime


class Status(StrEnum):
    HELD = "held"  # waiting for a person's review; never sent automatically
    REJECTED = "rejected"  # a reviewer decided it must not go
    CANCELLED = "cancelled"  # no longer owed: the council recorded the duty done another way
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"  # a crash may have come after the provider took it: a person decides




class OutboxMessage(Base):
    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    recipient_role: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(128))
    address: Mapped[str] = mapped_column(String(320))
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    office_hours_only: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sending_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    handed_over_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    provider_ref: Mapped[str | None] = mapped_column(String(255))
    content_hash: Mapped[str | None] = mapped_column(String(64))
    template_version: Mapped[int | None] = mapped_column(Integer)
    # For letters: the duty they fulfil and the event that made them owed.
    duty: Mapped[str | None] = mapped_column(String(64))
    source_event: Mapped[str | None] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (
        Index("ix_outbox_status_next", "status", "next_attempt_at"),
        Index("ix_outbox_duty", "case_id", "duty", "source_event"),
    )


class OutboxAudit(Base):
    """Who did what to a message, and when: held, approved, rejected, sent, failed. Append-only,
    written in the same transaction as the act it records."""

    __tablename__ = "outbox_audit"

    id: Mapped[int] = mapped_column(primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    by: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text)


def audit(
    session: Session, outbox_id: int, action: str, by: str, at: datetime, note: str | None = None
) -> None:
    session.add(OutboxAudit(outbox_id=outbox_id, action=action, by=by, at=at, note=note))


def claim_due(
    session: Session, now: datetime, redispatch_after: timedelta, in_office_hours: bool, limit: int = 500
) -> list[int]:
    """Mark queued messages whose time has come as dispatched now, and return their ids.

    A message dispatched earlier and still queued is claimed again after ``redispatch_after``:
    the broker may have lost it. Rows are locked with SKIP LOCKED on PostgreSQL, so two sweepers
    claim disjoint rows; on SQLite the sweeper's transaction holds the write lock.
    """
    query = (
        select(OutboxMessage)
        .where(
            OutboxMessage.status == Status.QUEUED.value,
            OutboxMessage.next_attempt_at <= now,
            (OutboxMessage.dispatched_at.is_(None)) | (OutboxMessage.dispatched_at <= now - redispatch_after),
        )
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if not in_office_hours:
        query = query.where(OutboxMessage.office_hours_only.is_(False))
    rows = session.scalars(query).all()
    for row in rows:
        row.dispatched_at = now
    return [row.id for row in rows]


def stale_sending(session: Session, now: datetime, timeout: timedelta) -> list[OutboxMessage]:
    """Messages left ``sending`` longer than any live send can take: their worker died."""
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.status == Status.SENDING.value,
                OutboxMessage.sending_started_at <= now - timeout,
            )
            .order_by(OutboxMessage.id)
            .with_for_update(skip_locked=True)
        )
    )
