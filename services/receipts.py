"""GOV.UK Notify's delivery receipts: the use case behind ``POST /api/notify/callback``."""

from __future__ import annotations

import logging

from messaging import receipts
from messaging.receipts import Receipt, ReceiptOutcome
from services.actors import Actor
from services.authorisation import Action, authorise
from services.runtime import Runtime

__all__ = ["Receipt", "ReceiptOutcome", "record_receipt"]

log = logging.getLogger(__name__)


def record_receipt(rt: Runtime, actor: Actor, receipt: Receipt) -> ReceiptOutcome:
    """Keep a receipt Notify posted and apply it to its message, in one short transaction, so
    Notify gets its answer quickly. The caller has checked that Notify sent it."""
    authorise(actor, Action.RUN_SWEEP)
    with rt.writing() as uow:
        outcome = receipts.record(uow.session, receipt, rt.clock())
        uow.commit()
    # Ids and statuses only: the receipt's body holds the recipient's address.
    log.info(
        "notify receipt %s (%s, attempt %s): outbox %s, %s",
        outcome.receipt_id,
        receipt.status,
        outcome.attempt,
        outcome.outbox_id if outcome.outbox_id is not None else "-",
        outcome.applied or "not applied",
    )
    return outcome
