"""GOV.UK Notify's delivery receipts, posted to us: each kept as it came, each applied at most once.

Notify posts a receipt when a notification's status changes and retries (every five minutes, a
few times) when it thinks we missed one, so receipts come twice and out of order. A receipt is
stored under its notification id and status; a retried one only counts ``attempt`` up and
changes nothing else. A new one is applied to its outbox message by the code that applies
polled statuses (:func:`messaging.status_reads.apply_status`), so a final status is never left
and a failed or returned letter becomes its worker's task exactly once.

The message is found by Notify's id (our ``provider_ref``) or, failing that, by the reference
we sent, which is the outbox key. A receipt about a notification the row no longer points at (a
resend made another) is kept and not applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from messaging.outbox import OutboxMessage
from messaging.status_reads import Applied, apply_status
from workflow.access import NotifyReceipt


@dataclass(frozen=True)
class Receipt:
    """The fields of a receipt caseloop acts on; ``raw`` is the whole body, kept as it came."""

    notify_id: str
    reference: str | None
    status: str
    raw: dict[str, Any]


@dataclass(frozen=True)
class ReceiptOutcome:
    receipt_id: int
    attempt: int  # 1 for the first time this id and status arrived
    outbox_id: int | None
    applied: Applied | None  # None: a repeat, or no message of ours

    @property
    def repeated(self) -> bool:
        return self.attempt > 1


def _store(session: Session, receipt: Receipt, now: datetime) -> tuple[int, int]:
    """Insert the receipt, or count a repeat of it: (row id, attempt). One statement, so two
    copies posted at the same moment make one row."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(NotifyReceipt).values(
        notify_id=receipt.notify_id,
        reference=receipt.reference,
        status=receipt.status,
        raw=receipt.raw,
        received_at=now,
        applied=False,
        attempt=1,
    )
    upsert = statement.on_conflict_do_update(
        index_elements=["notify_id", "status"], set_={"attempt": NotifyReceipt.attempt + 1}
    ).returning(NotifyReceipt.id, NotifyReceipt.attempt)
    row_id, attempt = session.execute(upsert).one()
    return int(row_id), int(attempt)


def _message(session: Session, receipt: Receipt) -> OutboxMessage | None:
    """The outbox message the receipt is about, locked; None if it is none of ours (any more)."""
    by_id = session.scalars(
        select(OutboxMessage).where(OutboxMessage.provider_ref == receipt.notify_id).with_for_update()
    ).first()
    if by_id is not None:
        return by_id
    if not receipt.reference:
        return None
    by_key = session.scalars(
        select(OutboxMessage).where(OutboxMessage.idempotency_key == receipt.reference).with_for_update()
    ).first()
    if by_key is None or (by_key.provider_ref not in (None, receipt.notify_id)):
        return None  # another notification of the same message: this one is not what went
    return by_key


def record(session: Session, receipt: Receipt, now: datetime) -> ReceiptOutcome:
    """Store ``receipt`` and, the first time it arrives, apply it (in the caller's transaction)."""
    receipt_id, attempt = _store(session, receipt, now)
    if attempt > 1:
        return ReceiptOutcome(receipt_id, attempt, None, None)
    message = _message(session, receipt)
    if message is None:
        return ReceiptOutcome(receipt_id, attempt, None, None)
    applied = apply_status(session, message, receipt.status, now)
    if applied is not Applied.IGNORED:
        stored = session.get(NotifyReceipt, receipt_id)
        if stored is not None:
            stored.applied = True
    return ReceiptOutcome(receipt_id, attempt, message.id, applied)
