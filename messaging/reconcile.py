"""Settling messages whose worker died while sending. Never resends what may have gone.

Two steps, so that no lock is held while a provider is asked:

- :func:`settle_stale`, in the sweep's short transaction: a message that was never handed over
  is queued again (sending it cannot make a duplicate); one that was is marked ``unknown``;
- :func:`confirm_unknown`, its own task: asks a channel that can tell (Notify by reference, the
  outbox folder by file name), outside any transaction, then records the answer under a short
  row lock: ``sent`` if it arrived, ``queued`` if it certainly did not, else still ``unknown``
  for a person to check.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from messaging import letter_lock
from messaging.channels import Channel
from messaging.lifecycle import SYSTEM, move
from messaging.outbox import OutboxMessage, Status
from workflow.db import Database

log = logging.getLogger(__name__)

STALE_UNKNOWN = "the worker stopped after handing the message over; check before resending"


@dataclass
class Settled:
    requeued: int = 0
    failed: int = 0
    unknown: list[int] = field(default_factory=list)  # each worth asking its channel about


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


def settle_stale(session: Session, now: datetime, timeout: timedelta, max_attempts: int) -> Settled:
    """Requeue or mark ``unknown`` every stale send, in the caller's (short) transaction."""
    settled = Settled()
    for row in stale_sending(session, now, timeout):
        if row.handed_over_at is None and row.attempts >= max_attempts:
            row.last_error = f"out of attempts ({row.attempts}): the last one's worker stopped"
            move(session, row, Status.FAILED, by=SYSTEM, at=now, note=row.last_error)
            settled.failed += 1
        elif row.handed_over_at is None:
            # The provider never had the whole message: sending it again cannot make a duplicate.
            move(session, row, Status.QUEUED, by=SYSTEM, at=now)
            row.dispatched_at, row.next_attempt_at = None, now
            settled.requeued += 1
        else:
            row.last_error = STALE_UNKNOWN
            move(session, row, Status.UNKNOWN, by=SYSTEM, at=now, note=row.last_error)
            settled.unknown.append(row.id)
        log.warning("outbox %s was left sending; now %s", row.id, row.status)
    return settled


@dataclass(frozen=True)
class _Snapshot:
    id: int
    channel: str
    idempotency_key: str
    handed_over_at: datetime | None
    attempts: int


def confirm_unknown(db: Database, channels: Mapping[str, Channel], outbox_id: int, now: datetime) -> str:
    """Ask the channel whether ``unknown`` message ``outbox_id`` arrived; record what it says.
    Returns ``confirmed``, ``requeued`` or ``unknown``."""
    with db.reading() as session:
        row = session.get(OutboxMessage, outbox_id)
        if row is None or row.status != Status.UNKNOWN:
            return "missing" if row is None else f"skipped: already {row.status}"
        snap = _Snapshot(row.id, row.channel, row.idempotency_key, row.handed_over_at, row.attempts)
    channel = channels.get(snap.channel)
    delivered = channel.confirm(row) if channel is not None else None  # outside any transaction
    if delivered is None:
        return "unknown"
    with db.transaction() as session:
        row = letter_lock.locked(session, outbox_id)
        if row is None or row.status != Status.UNKNOWN or row.attempts != snap.attempts:
            return f"skipped: already {row.status if row else 'gone'}"
        if delivered:
            row.sent_at, row.last_error = snap.handed_over_at or now, None
            move(
                session, row, Status.SENT, by=SYSTEM, at=now, note="confirmed with the channel after a crash"
            )
            outcome = "confirmed"
        else:
            row.last_error = None
            move(
                session, row, Status.QUEUED, by=SYSTEM, at=now, note="the channel confirmed it never arrived"
            )
            row.dispatched_at, row.next_attempt_at = None, now
            outcome = "requeued"
    log.info("outbox %s: %s with %s", outbox_id, outcome, snap.channel)
    return outcome
