"""Delivery statuses from providers that keep them (GOV.UK Notify), and what a failure becomes.

Notify keeps a notification's status for seven days, so caseloop asks about each message it
sent there, at most every half hour for that week, and keeps what it hears on the outbox row.
The sweep only *claims* the messages to ask about (a short transaction marks when each was
asked); the reads run as their own task, outside any transaction, and each answer is recorded
under a short row lock. A permanent failure or a returned letter marks the message failed,
which gives the case's worker a task (the ``failed_letter`` clock).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from messaging import letter_lock
from messaging.channels import Channel, DeliveryError
from messaging.lifecycle import SYSTEM, move
from messaging.outbox import OutboxMessage, Status
from workflow.db import Database

log = logging.getLogger(__name__)

KEPT_FOR = timedelta(days=7)
ASK_EVERY = timedelta(minutes=30)
FINAL_GOOD = {"delivered", "received"}
FAILED = {
    "permanent-failure",
    "temporary-failure",
    "technical-failure",
    "validation-failed",
    "virus-scan-failed",
    "returned-letter",
    "cancelled",
}


def askable(channels: Mapping[str, Channel]) -> list[str]:
    return [name for name, ch in channels.items() if hasattr(ch, "fetch_status")]


def claim_status_reads(
    session: Session, channels: Mapping[str, Channel], now: datetime, limit: int = 200
) -> list[int]:
    """Mark up to ``limit`` sent messages as being asked about now, and return their ids."""
    names = askable(channels)
    if not names:
        return []
    rows = session.scalars(
        select(OutboxMessage)
        .where(
            OutboxMessage.status == Status.SENT.value,
            OutboxMessage.channel.in_(names),
            OutboxMessage.sent_at >= now - KEPT_FOR,
        )
        .order_by(OutboxMessage.sent_at)
        .limit(limit * 5)
        .with_for_update(skip_locked=True)
    ).all()
    claimed: list[int] = []
    for row in rows:
        if len(claimed) >= limit:
            break
        asked = row.payload.get("status_asked_at") or row.payload.get("status_checked_at")
        if row.payload.get("delivery_status") in FINAL_GOOD:
            continue
        if asked and datetime.fromisoformat(asked) > now - ASK_EVERY:
            continue
        row.payload = {**row.payload, "status_asked_at": now.isoformat()}
        claimed.append(row.id)
    return claimed


def read_statuses(
    db: Database, channels: Mapping[str, Channel], outbox_ids: list[int], now: datetime
) -> dict[str, int]:
    """Ask each message's provider for its status and record it; returns what was learnt."""
    counts = {"checked": 0, "failed": 0}
    for outbox_id in outbox_ids:
        with db.reading() as session:
            row = session.get(OutboxMessage, outbox_id)
            if row is None or row.status != Status.SENT:
                continue
            channel, reference = channels.get(row.channel), row.provider_ref or ""
        if channel is None or not hasattr(channel, "fetch_status"):
            continue
        try:
            status = str(channel.fetch_status(reference))  # outside any transaction: it may stall
        except DeliveryError as exc:
            log.warning(
                "outbox %s: no delivery status (%s, code %s)", outbox_id, type(exc).__name__, exc.code
            )
            continue
        counts["checked"] += 1
        if _record(db, outbox_id, status, now):
            counts["failed"] += 1
    return counts


def _record(db: Database, outbox_id: int, status: str, now: datetime) -> bool:
    """Keep ``status`` on the row; True if it turned the message failed."""
    with db.transaction() as session:
        row = letter_lock.locked(session, outbox_id)
        if row is None:
            return False
        return apply_status(session, row, status, now) is Applied.FAILED


class Applied(StrEnum):
    """What a provider's status did to a message."""

    IGNORED = "ignored"  # the message or its delivery status was settled already: it stays
    RECORDED = "recorded"  # kept on the row
    FAILED = "failed"  # kept, and the message failed (its case's worker gets a task)


def is_final(status: str | None) -> bool:
    return status in FINAL_GOOD or status in FAILED


def apply_status(session: Session, row: OutboxMessage, status: str, now: datetime) -> Applied:
    """Apply a provider's ``status`` to ``row`` (locked by the caller), however it was learnt:
    read by polling or posted to us in a receipt. A final status is never left: a message no
    longer ``sent`` (failed, or settled by a person) stays as it is, and a delivery status
    already final (``delivered``) is not overwritten by a late ``sending``."""
    if row.status != Status.SENT or is_final(row.payload.get("delivery_status")):
        return Applied.IGNORED
    row.payload = {**row.payload, "delivery_status": status, "status_checked_at": now.isoformat()}
    if status not in FAILED:
        return Applied.RECORDED
    row.last_error = f"the provider reported: {status}"
    move(session, row, Status.FAILED, by=SYSTEM, at=now, note=row.last_error)
    log.warning("outbox %s: the provider reported %s", row.id, status)
    return Applied.FAILED
