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

from sqlalchemy import ColumnElement, case, false, func, select, update
from sqlalchemy.orm import Session, aliased

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
    # The subqueries read the table the statement updates: aliased, so that neither is taken
    # for a condition on the row being updated.
    queued, waiting = aliased(OutboxMessage), aliased(OutboxMessage)
    outstanding = func.count()
    # What may still be handed out, never below nothing (SQLite reads a negative LIMIT as none).
    budget = (
        select(case((outstanding < capacity, capacity - outstanding), else_=0))
        .select_from(waiting)
        .where(
            waiting.status == Status.QUEUED.value,
            waiting.dispatched_at.is_not(None),
            ~_lost(waiting, redispatch_before),
        )
        .scalar_subquery()
    )
    due = (
        select(queued.id)
        .where(
            queued.status == Status.QUEUED.value,
            queued.next_attempt_at <= now,
            queued.dispatched_at.is_(None) | _lost(queued, redispatch_before),
        )
        .order_by(queued.next_attempt_at, queued.id)
        .limit(budget)
        .with_for_update(skip_locked=True)
    )
    if not in_office_hours:
        due = due.where(queued.office_hours_only.is_(False))
    # Counted, chosen and marked in one statement (a claim follows every delivery).
    claimed = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(due.scalar_subquery()))
        .values(dispatched_at=now)
        .returning(OutboxMessage.id, OutboxMessage.next_attempt_at)
        .execution_options(synchronize_session=False)
    ).all()
    return [outbox_id for outbox_id, _ in sorted(claimed, key=lambda row: (row[1], row[0]))]


def _lost(message: type[OutboxMessage], redispatch_before: datetime | None) -> ColumnElement[bool]:
    """Whether ``message``, dispatched and still queued, had its broker message lost."""
    return false() if redispatch_before is None else message.dispatched_at <= redispatch_before
