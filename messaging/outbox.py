"""The outbox tables: every outgoing message is a row before anything is queued.

A row's ``idempotency_key`` is unique, so whatever is redelivered or replayed creates a message
once. Its status moves only as :mod:`messaging.lifecycle` declares, and every move that matters
to a person writes an :class:`OutboxAudit` row in the same transaction. The broker only ever
carries a row's id.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from workflow.db import Base, UTCDateTime
from workflow.queue_indexes import outbox_duty_letters, outbox_letters_not_gone


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
    # Deliveries begun (rendering, before any attempt) whose task never came back: a message that
    # kills its worker while being prepared is failed after a bounded number (see the relay).
    unfinished_preparations: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
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
    # A letter's episode, as its payload says (rows made before 0015 without one say NULL): a
    # column, so that the open loops match letters to their duty's clock from an index alone.
    episode: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        Index("ix_outbox_status_next", "status", "next_attempt_at"),
        Index("ix_outbox_duty", "case_id", "duty", "source_event"),
        Index("ix_outbox_sending_started", "sending_started_at"),  # readiness: the latest attempt
        outbox_duty_letters(),
        outbox_letters_not_gone(),
    )


class OutboxAudit(Base):
    """Who did what to a message, and when: held, approved, rejected, sent, failed. Append-only,
    written by :func:`messaging.lifecycle.move` in the same transaction as the move it records."""

    __tablename__ = "outbox_audit"

    id: Mapped[int] = mapped_column(primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    by: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text)


class SentContent(Base):
    """What an attempt handed its channel, kept as sent: one row for each form of the message
    (``text``, ``html`` and, for a posted letter, ``pdf``) with the SHA-256 of its bytes. Written
    when the attempt begins, so the row of a message that went holds what went; shown by
    ``caseloop outbox show`` instead of a fresh rendering (:mod:`messaging.archive`)."""

    __tablename__ = "outbox_content"

    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id"), primary_key=True)
    form: Mapped[str] = mapped_column(String(8), primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    stored_at: Mapped[datetime] = mapped_column(UTCDateTime)
