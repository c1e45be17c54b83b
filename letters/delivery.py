"""Delivering one outbox message, exactly once, whatever the broker or the worker does.

The task contract: reload the row under a lock; go on only if it is ``queued``; write
``sending`` and commit *before* calling the provider; record the hand-over moment; then write
``sent``. A redelivered task finds the row no longer queued and does nothing. A worker that dies
leaves ``sending``, which :func:`reconcile_stale` settles: resent if the hand-over never came,
confirmed with the channel where it can tell, else ``unknown`` for a person to check.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from letters.channels import Channel, DeliveryError, PermanentDeliveryError, RetryableDeliveryError
from letters.email import OutgoingEmail
from letters.letter import OutgoingLetter
from letters.rendering import RenderError
from workflow.db import Database
from workflow.errors import CaseloopError
from workflow.outbox import OutboxMessage, Status, audit, stale_sending
from workflow.timeutil import Clock

log = logging.getLogger(__name__)

Outgoing = OutgoingEmail | OutgoingLetter
Renderer = Callable[[Session, OutboxMessage], Outgoing]
SentHook = Callable[[Session, OutboxMessage, datetime], object]
FailedHook = Callable[[Session, OutboxMessage, datetime, str], object]
SYSTEM = "caseloop"
MAX_BACKOFF = timedelta(hours=1)


class Superseded(CaseloopError):
    """This attempt lost the message to a later one (it outlived the sending timeout)."""


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    base_seconds: float

    def backoff(self, attempt: int, rng: random.Random | None = None) -> timedelta:
        """Exponential back-off with jitter (half to one and a half times), capped at an hour."""
        jitter = (rng or random).uniform(0.5, 1.5)
        seconds = self.base_seconds * (2 ** max(attempt - 1, 0)) * jitter
        return min(timedelta(seconds=seconds), MAX_BACKOFF)


@dataclass
class Deliverer:
    db: Database
    channels: Mapping[str, Channel]
    renderers: Mapping[str, Renderer]
    retry: RetryPolicy
    clock: Clock
    # Called in the transaction that marks a message sent (letters record their duty fulfilled).
    on_sent: SentHook | None = None
    # Called in the transaction that marks a message failed for good (a letter becomes a task).
    on_failed: FailedHook | None = None

    def deliver(self, outbox_id: int) -> str:
        """Deliver message ``outbox_id`` if it is still queued. Returns what happened, for logs."""
        with self.db.transaction() as session:
            row = session.get(OutboxMessage, outbox_id, with_for_update=True)
            if row is None:
                return "missing"
            if row.status != Status.QUEUED:
                return f"skipped: already {row.status}"
            channel = self.channels.get(row.channel)
            renderer = self.renderers.get(row.kind)
            try:
                if channel is None:
                    raise RenderError(f"no channel {row.channel!r} is configured")
                if renderer is None:
                    raise RenderError(f"no renderer for {row.kind!r}")
                email = renderer(session, row)
            except RenderError as exc:
                # A letter that cannot be rendered whole is held for a person, never sent with a
                # blank; a staff digest that cannot be rendered has failed.
                row.status = Status.HELD if row.duty is not None else Status.FAILED
                row.last_error = str(exc)
                audit(session, row.id, str(row.status), SYSTEM, self.clock(), str(exc))
                log.error("outbox %s not rendered (%s): now %s", row.id, type(exc).__name__, row.status)
                return str(row.status)
            row.status, row.attempts = Status.SENDING, row.attempts + 1
            row.sending_started_at, row.handed_over_at = self.clock(), None
            row.content_hash = email.content_hash
            attempt = row.attempts
        try:
            reference = channel.send(email, lambda: self._handed_over(outbox_id, attempt))
        except Superseded:
            log.warning("outbox %s attempt %s was overtaken before hand-over; not sent", outbox_id, attempt)
            return "superseded"
        except DeliveryError as exc:
            return self._failed_attempt(outbox_id, attempt, exc)
        with self.db.transaction() as session:
            # A slow attempt settled as `unknown` meanwhile is now known to have gone.
            row = session.get(OutboxMessage, outbox_id, with_for_update=True)
            if row is None or row.attempts != attempt or row.status not in (Status.SENDING, Status.UNKNOWN):
                return "lost track"
            now = self.clock()
            row.status, row.sent_at, row.provider_ref, row.last_error = Status.SENT, now, reference, None
            audit(session, row.id, "sent", SYSTEM, now, f"{channel.name} attempt {attempt}")
            if self.on_sent is not None:
                self.on_sent(session, row, now)
        log.info("outbox %s sent through %s on attempt %s", outbox_id, channel.name, attempt)
        return "sent"

    def _handed_over(self, outbox_id: int, attempt: int) -> None:
        """Record the hand-over, but only while this attempt still owns the row.

        A send slower than the sending timeout has been requeued and perhaps retried by another
        attempt; that one owns the message now, and this one must stop before the provider has it.
        """
        with self.db.transaction() as session:
            result = session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == outbox_id,
                    OutboxMessage.status == Status.SENDING,
                    OutboxMessage.attempts == attempt,
                )
                .values(handed_over_at=self.clock())
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise Superseded(f"outbox {outbox_id}: attempt {attempt} no longer owns the message")

    def _failed_attempt(self, outbox_id: int, attempt: int, exc: DeliveryError) -> str:
        with self.db.transaction() as session:
            row = session.get(OutboxMessage, outbox_id, with_for_update=True)
            if row is None or row.status != Status.SENDING or row.attempts != attempt:
                return "lost track"
            row.last_error = str(exc)
            give_up = isinstance(exc, PermanentDeliveryError) or attempt >= self.retry.max_attempts
            if give_up:
                row.status = Status.FAILED
                audit(session, row.id, "failed", SYSTEM, self.clock(), str(exc))
                if self.on_failed is not None:
                    self.on_failed(session, row, self.clock(), str(exc))
            else:
                assert isinstance(exc, RetryableDeliveryError)
                row.status, row.dispatched_at = Status.QUEUED, None
                row.next_attempt_at = self.clock() + self.retry.backoff(attempt)
                not_before = getattr(exc, "not_before", None)  # a provider's daily limit
                if not_before is not None and not_before > row.next_attempt_at:
                    row.next_attempt_at = not_before
        outcome = "failed" if give_up else "retrying"
        log.warning(
            "outbox %s attempt %s %s: %s (code %s)", outbox_id, attempt, outcome, type(exc).__name__, exc.code
        )
        return outcome


def reconcile_stale(
    session: Session,
    channels: Mapping[str, Channel],
    now: datetime,
    timeout: timedelta,
    on_sent: SentHook | None = None,
) -> dict[str, int]:
    """Settle messages whose worker died while sending. Never resends what may have gone."""
    counts = {"requeued": 0, "confirmed": 0, "unknown": 0}
    for row in stale_sending(session, now, timeout):
        channel = channels.get(row.channel)
        if row.handed_over_at is None:
            # The provider never had the whole message: sending it again cannot make a duplicate.
            delivered: bool | None = False
        else:
            delivered = channel.confirm(row) if channel else None
        if delivered is True:
            row.status, row.sent_at = Status.SENT, row.handed_over_at
            audit(session, row.id, "sent", SYSTEM, now, "confirmed with the channel after a crash")
            if on_sent is not None:
                on_sent(session, row, now)
            counts["confirmed"] += 1
        elif delivered is False:
            row.status, row.dispatched_at, row.next_attempt_at = Status.QUEUED, None, now
            counts["requeued"] += 1
        else:
            row.status = Status.UNKNOWN
            row.last_error = "the worker stopped after handing the message over; check before resending"
            audit(session, row.id, "unknown", SYSTEM, now, row.last_error)
            counts["unknown"] += 1
        log.warning("outbox %s was left sending; now %s", row.id, row.status)
    return counts
