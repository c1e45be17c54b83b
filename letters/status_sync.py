"""Delivery statuses from providers that keep them (GOV.UK Notify), and what a failure becomes.

Notify keeps a notification's status for seven days, so caseloop asks about each message it
sent there, at most every half hour for that week, and keeps what it hears on the outbox row.
A permanent failure or a returned letter marks the message failed and, through the
``on_failed`` hook, gives the case's worker a task (the ``failed_letter`` clock).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from letters.channels import Channel, DeliveryError
from letters.delivery import SYSTEM, FailedHook
from workflow.outbox import OutboxMessage, Status, audit

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


def sync_statuses(
    session: Session,
    channels: Mapping[str, Channel],
    now: datetime,
    on_failed: FailedHook | None = None,
    limit: int = 200,
) -> dict[str, int]:
    """Ask providers about recently sent messages; returns counts of what was learnt."""
    counts = {"checked": 0, "failed": 0}
    askable = [name for name, ch in channels.items() if hasattr(ch, "fetch_status")]
    if not askable:
        return counts
    rows = session.scalars(
        select(OutboxMessage)
        .where(
            OutboxMessage.status == Status.SENT.value,
            OutboxMessage.channel.in_(askable),
            OutboxMessage.sent_at >= now - KEPT_FOR,
        )
        .order_by(OutboxMessage.sent_at)
        .limit(limit * 5)
        .with_for_update(skip_locked=True)
    ).all()
    for row in rows:
        if counts["checked"] >= limit:
            break
        known = row.payload.get("delivery_status")
        checked = row.payload.get("status_checked_at")
        if known in FINAL_GOOD or (checked and datetime.fromisoformat(checked) > now - ASK_EVERY):
            continue
        try:
            status = channels[row.channel].fetch_status(row.provider_ref or "")  # type: ignore[attr-defined]
        except DeliveryError as exc:
            log.warning("outbox %s: no delivery status (%s, code %s)", row.id, type(exc).__name__, exc.code)
            continue
        counts["checked"] += 1
        row.payload = {**row.payload, "delivery_status": status, "status_checked_at": now.isoformat()}
        if status in FAILED:
            row.status, row.last_error = Status.FAILED, f"the provider reported: {status}"
            audit(session, row.id, "failed", SYSTEM, now, row.last_error)
            counts["failed"] += 1
            log.warning("outbox %s: the provider reported %s", row.id, status)
            if on_failed is not None:
                on_failed(session, row, now, row.last_error)
    return counts
