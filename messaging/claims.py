"""Claiming due messages: each claim marks a queued row as dispatched, so one sweep hands it out.

Rows are locked with SKIP LOCKED on PostgreSQL, so two sweepers claim disjoint rows; on SQLite the
sweeper's transaction holds the write lock.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from messaging.outbox import OutboxMessage, Status


def claim_due(
    session: Session, now: datetime, redispatch_after: timedelta, in_office_hours: bool, limit: int = 500
) -> list[int]:
    """Mark queued messages whose time has come as dispatched now, and return their ids.

    A message dispatched earlier and still queued is claimed again after ``redispatch_after``:
    the broker may have lost it.
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
