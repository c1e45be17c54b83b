"""Claiming due messages: each claim marks a queued row as dispatched, so one sweep hands it out.

Rows are locked with SKIP LOCKED on PostgreSQL, so two sweepers claim disjoint rows; on SQLite the
sweeper's transaction holds the write lock.

A claim never piles messages up in the broker. A row that is ``queued`` with ``dispatched_at``
set has a message in the broker, or had one that was lost; it is *outstanding*. Each claim is
sized to what the workers can take (``capacity``) minus what is outstanding, and an outstanding
row is claimed again only when its caller knows that its earlier message can no longer be
waiting (``redispatch_before``): the broker's delivery queue was empty, or the process that
claimed it delivers in-process and has long finished. So the broker holds at most one message
per queued row, however long the backlog.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import false, func, select
from sqlalchemy.orm import Session

from messaging.outbox import OutboxMessage, Status


def claim_due(
    session: Session,
    now: datetime,
    in_office_hours: bool,
    *,
    capacity: int,
    redispatch_before: datetime | None,
) -> list[int]:
    """Mark up to ``capacity`` minus the outstanding queued messages whose time has come as
    dispatched now, and return their ids.

    A message dispatched at or before ``redispatch_before`` and still queued is claimed again (its
    broker message was lost); ``None`` claims only messages never dispatched.
    """
    dispatched = OutboxMessage.dispatched_at.is_not(None)
    lost = false() if redispatch_before is None else OutboxMessage.dispatched_at <= redispatch_before
    outstanding = session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.status == Status.QUEUED.value, dispatched, ~lost)
    )
    budget = capacity - int(outstanding or 0)
    if budget <= 0:
        return []
    query = (
        select(OutboxMessage)
        .where(
            OutboxMessage.status == Status.QUEUED.value,
            OutboxMessage.next_attempt_at <= now,
            OutboxMessage.dispatched_at.is_(None) | lost,
        )
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(budget)
        .with_for_update(skip_locked=True)
    )
    if not in_office_hours:
        query = query.where(OutboxMessage.office_hours_only.is_(False))
    rows = session.scalars(query).all()
    for row in rows:
        row.dispatched_at = now
    return [row.id for row in rows]
