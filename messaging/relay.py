"""Delivering one outbox message, exactly once, whatever the broker, the worker or the network does.

The task contract, in short steps so that no lock is held over slow work or the network:

1. *prepare*: count the preparation on the row (a short write, committed; the one statement also
   reads the row back), then render what will be sent, PDF and all, reading without a lock. The
   count is cleared when the attempt starts or the preparation's failure is recorded, so it only
   grows when the task died while preparing (a
   poison message killing its worker, in a PDF library say). The broker redelivers a task whose
   worker died, so without the count such a message would kill worker after worker for ever;
   at ``max_attempts`` unfinished preparations it is ``failed`` with that reason instead;
2. *start*: under a short row lock, go on only if the row is still ``queued`` as it was read,
   move it to ``sending`` and commit before the provider is called;
3. *send*, outside any transaction. The channel calls back at the hand-over (just before SMTP's
   final dot, a file's rename, Notify's request), and that moment is recorded;
4. *record* the result under a short row lock: ``sent`` (retried on a fresh connection, so a
   database blip never turns a delivered message into ``unknown``), a retry, or ``failed``.

A redelivered task finds the row no longer queued and does nothing. Any failure before the
hand-over is a failed attempt (retried with back-off, ``failed`` at the attempt limit); any
failure after it that the channel cannot vouch for makes the message ``unknown`` for
reconciliation, never a resend.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from letters.rendering import RenderError
from messaging import archive, letter_lock
from messaging.channels import Channel, DeliveryError, OutcomeUnknown, PermanentDeliveryError
from messaging.email import OutgoingEmail
from messaging.letter import OutgoingLetter
from messaging.lifecycle import SYSTEM, move
from messaging.outbox import OutboxMessage, Status
from workflow.db import Database
from workflow.errors import CaseloopError
from workflow.timeutil import Clock

log = logging.getLogger(__name__)

Outgoing = OutgoingEmail | OutgoingLetter
Renderer = Callable[[Session, OutboxMessage], Outgoing]
MAX_BACKOFF = timedelta(hours=1)
# Errors in building a message that no retry can mend (a CR/LF in a header, an address that is
# not ASCII for a server that takes only ASCII): the attempt fails for good at once.
_BUILD_ERRORS = (ValueError, TypeError, LookupError)
RECORD_TRIES = 5  # fresh connections tried to record a send the provider accepted


class DeliveryOutcome(StrEnum):
    """What one call of :meth:`Deliverer.deliver` did (for logs and the CLI's summary)."""

    SENT = "sent"
    RETRYING = "retrying"
    FAILED = "failed"
    HELD = "held"
    UNKNOWN = "unknown"
    MISSING = "missing"
    SUPERSEDED = "superseded"
    LOST_TRACK = "lost track"
    SKIPPED_HELD = "skipped: already held"
    SKIPPED_REJECTED = "skipped: already rejected"
    SKIPPED_CANCELLED = "skipped: already cancelled"
    SKIPPED_SENDING = "skipped: already sending"
    SKIPPED_SENT = "skipped: already sent"
    SKIPPED_FAILED = "skipped: already failed"
    SKIPPED_UNKNOWN = "skipped: already unknown"
    SKIPPED_QUEUED = "skipped: already queued"  # queued again by someone else meanwhile

    @classmethod
    def skipped(cls, status: str) -> DeliveryOutcome:
        return cls(f"skipped: already {status}")


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
    # Which channel each medium goes by *now* ("email", "post", "staff"): chosen when sending, so
    # a letter owed before SMTP or Notify was set up goes by what is configured when it leaves.
    routes: Mapping[str, str] = field(default_factory=dict)

    def channel_for(self, row: OutboxMessage) -> str:
        medium = "staff" if row.duty is None else str(row.payload.get("medium") or "")
        routed = self.routes.get(medium)
        return routed if routed is not None and routed in self.channels else row.channel

    def deliver(self, outbox_id: int) -> DeliveryOutcome:
        """Deliver message ``outbox_id`` if it is still queued. Returns what happened."""
        row = self._begin_preparing(outbox_id)
        if isinstance(row, DeliveryOutcome):
            return row
        with self.db.reading() as session:
            # The row as the preparation's count left it (queued): the attempt starts only if it
            # is still so, and for as many attempts, under the lock taken by ``_start``.
            session.add(row)
            seen_attempts, name = row.attempts, self.channel_for(row)
            channel, renderer = self.channels.get(name), self.renderers.get(row.kind)
            try:
                if channel is None:
                    raise RenderError(f"no channel {name!r} is configured")
                if renderer is None:
                    raise RenderError(f"no renderer for {row.kind!r}")
                outgoing = renderer(session, row)
            except RenderError as exc:
                return self._not_renderable(outbox_id, seen_attempts, exc)
            except Exception as exc:  # a PDF's time limit, a font gone: the attempt failed
                return self._failed_before_start(outbox_id, seen_attempts, exc)
        attempt = self._start(outbox_id, seen_attempts, name, outgoing)
        if isinstance(attempt, DeliveryOutcome):
            return attempt
        handed_over = False

        def on_handover() -> None:
            nonlocal handed_over
            self._handed_over(outbox_id, attempt)
            handed_over = True

        try:
            reference = channel.send(outgoing, on_handover)
        except Superseded:
            log.warning("outbox %s attempt %s was overtaken before hand-over; not sent", outbox_id, attempt)
            return DeliveryOutcome.SUPERSEDED
        except DeliveryError as exc:
            # The channel's own word: definite for a reply it read, "unknown" where it lost one.
            if handed_over and isinstance(exc, OutcomeUnknown):
                return self._unknown(outbox_id, attempt, exc)
            return self._failed_attempt(outbox_id, attempt, exc)
        except Exception as exc:
            if handed_over:
                return self._unknown(outbox_id, attempt, exc)
            return self._failed_attempt(outbox_id, attempt, exc)
        return self._record_sent(outbox_id, attempt, name, reference)

    def _begin_preparing(self, outbox_id: int) -> OutboxMessage | DeliveryOutcome:
        """Count this preparation before the risky work, committed, so that it survives the task's
        death; or fail the message if its earlier preparations died too often. Returns the row
        counted (go on and prepare it) or what happened instead.

        The count must outlive a worker killed while preparing, not a crash of the database
        server (which no message causes): it need not wait for the disk (see ``_start``). Nor
        need the failing of a message prepared too often: lost with the database, it is done
        again the same way by the next delivery of that message."""
        with self.db.transaction(durable=False) as session:
            # The usual case in one statement, which also reads the row for the rendering. It locks
            # the letter alone, and waits for nothing else while it holds it: the case's lock comes
            # first only where the status changes (below, and in every later step).
            counted: OutboxMessage | None = session.scalar(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == outbox_id,
                    OutboxMessage.status == Status.QUEUED.value,
                    OutboxMessage.unfinished_preparations < self.retry.max_attempts,
                )
                .values(unfinished_preparations=OutboxMessage.unfinished_preparations + 1)
                .returning(OutboxMessage)
            )
            if counted is not None:
                return counted
            # Gone, no longer queued, or prepared too often: look under the locks.
            row = letter_lock.locked(session, outbox_id)
            if row is None:
                return DeliveryOutcome.MISSING
            if row.status != Status.QUEUED:
                return DeliveryOutcome.skipped(row.status)
            if row.unfinished_preparations >= self.retry.max_attempts:
                row.last_error = (
                    f"its task stopped {row.unfinished_preparations} times while preparing it, before "
                    "anything was handed over; not tried again (see the worker logs for this id)"
                )
                move(session, row, Status.FAILED, by=SYSTEM, at=self.clock(), note=row.last_error)
                log.error("outbox %s: its task died preparing it too often; now failed", outbox_id)
                return DeliveryOutcome.FAILED
            row.unfinished_preparations += 1  # queued again meanwhile: counted as above
        return row

    def _start(
        self, outbox_id: int, seen_attempts: int, channel: str, outgoing: Outgoing
    ) -> int | DeliveryOutcome:
        """Move the row to ``sending`` and keep what this attempt will hand over.

        Committed without waiting for the disk: nothing leaves before the hand-over is recorded,
        and that commit is durable, which writes this one to disk first. A database crash that
        loses it loses it before anything went: the row is still ``queued``, as it was."""
        with self.db.transaction(durable=False) as session:
            row = letter_lock.locked(session, outbox_id)
            if row is None:
                return DeliveryOutcome.MISSING
            if row.status != Status.QUEUED or row.attempts != seen_attempts:
                return DeliveryOutcome.skipped(row.status)  # another attempt began meanwhile
            row.unfinished_preparations = 0  # this preparation finished: it was not poison
            if row.attempts >= self.retry.max_attempts:
                row.last_error = f"out of attempts ({row.attempts}); last error: {row.last_error}"
                move(session, row, Status.FAILED, by=SYSTEM, at=self.clock(), note=row.last_error)
                return DeliveryOutcome.FAILED
            move(session, row, Status.SENDING, by=SYSTEM, at=self.clock())
            row.attempts += 1
            row.channel = channel
            row.sending_started_at, row.handed_over_at = self.clock(), None
            row.content_hash, row.template_version = outgoing.content_hash, outgoing.template_version
            if isinstance(outgoing, OutgoingEmail):
                row.address = outgoing.to  # where it goes now: the case's address when it was sent
            # What this attempt hands over is kept as it is, so a sent message can be shown as sent.
            archive.keep(session, outbox_id, row.attempts, outgoing, row.sending_started_at)
            return row.attempts

    def _not_renderable(self, outbox_id: int, seen_attempts: int, exc: RenderError) -> DeliveryOutcome:
        """A letter that cannot be rendered whole is held for a person, never sent with a blank;
        a staff digest that cannot be rendered has failed."""
        with self.db.transaction() as session:
            row = letter_lock.locked(session, outbox_id)
            if row is None or row.status != Status.QUEUED or row.attempts != seen_attempts:
                return DeliveryOutcome.LOST_TRACK
            row.unfinished_preparations = 0
            row.last_error = str(exc)
            target = Status.HELD if row.duty is not None else Status.FAILED
            move(session, row, target, by=SYSTEM, at=self.clock(), note=str(exc))
        log.error("outbox %s not rendered (%s): now %s", outbox_id, type(exc).__name__, target)
        return DeliveryOutcome.HELD if target is Status.HELD else DeliveryOutcome.FAILED

    def _failed_before_start(self, outbox_id: int, seen_attempts: int, exc: Exception) -> DeliveryOutcome:
        """Preparing failed unexpectedly: it counts as an attempt, so a message that can never be
        prepared ends ``failed`` at the attempt limit instead of cycling for ever."""
        with self.db.transaction() as session:
            row = letter_lock.locked(session, outbox_id)
            if row is None or row.status != Status.QUEUED or row.attempts != seen_attempts:
                return DeliveryOutcome.LOST_TRACK
            row.unfinished_preparations = 0  # it failed, but it came back to say so
            move(session, row, Status.SENDING, by=SYSTEM, at=self.clock())
            if row.attempts >= self.retry.max_attempts:
                # Queued again with its attempts spent (a channel said a lost one never arrived):
                # it fails now rather than count past the limit.
                return self._settle_failure(session, row, row.attempts, exc)
            row.attempts += 1
            return self._settle_failure(session, row, row.attempts, exc)

    def _handed_over(self, outbox_id: int, attempt: int) -> None:
        """Record the hand-over, but only while this attempt still owns the row.

        A send slower than the sending timeout has been requeued and perhaps retried by another
        attempt; that one owns the message now, and this one must stop before the provider has it.
        Durable before the channel goes on: after a crash of the database as much as of the
        worker, a message handed over is never taken for one that was not (and resent).
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

    def _record_sent(self, outbox_id: int, attempt: int, channel: str, reference: str) -> DeliveryOutcome:
        """Write ``sent``. The provider has the message, so this must not be lost to a dropped
        connection: each try takes a fresh connection from the pool (pre-pinged), with a pause."""
        for tries in range(1, RECORD_TRIES + 1):
            try:
                with self.db.transaction() as session:
                    # A slow attempt settled as `unknown` meanwhile is now known to have gone.
                    row = letter_lock.locked(session, outbox_id)
                    if row is None or row.attempts != attempt:
                        return DeliveryOutcome.LOST_TRACK
                    if row.status not in (Status.SENDING, Status.UNKNOWN):
                        return DeliveryOutcome.LOST_TRACK
                    now = self.clock()
                    row.sent_at, row.provider_ref, row.last_error = now, reference, None
                    move(session, row, Status.SENT, by=SYSTEM, at=now, note=f"{channel} attempt {attempt}")
                break
            except DBAPIError as exc:
                if tries == RECORD_TRIES:
                    # Left `sending` with its hand-over recorded: reconciliation makes it `unknown`.
                    log.error("outbox %s sent but not recorded (%s)", outbox_id, type(exc).__name__)
                    raise
                log.warning("outbox %s: recording the send failed (%s); again", outbox_id, type(exc).__name__)
                time.sleep(0.2 * 2**tries)
        log.info("outbox %s sent through %s on attempt %s", outbox_id, channel, attempt)
        return DeliveryOutcome.SENT

    @staticmethod
    def _owned(session: Session, outbox_id: int, attempt: int) -> OutboxMessage | None:
        """The row, locked, if attempt ``attempt`` still owns it (it is ``sending`` for it)."""
        row = letter_lock.locked(session, outbox_id)
        if row is None or row.status != Status.SENDING or row.attempts != attempt:
            return None
        return row

    def _unknown(self, outbox_id: int, attempt: int, exc: Exception) -> DeliveryOutcome:
        with self.db.transaction() as session:
            row = self._owned(session, outbox_id, attempt)
            if row is None:
                return DeliveryOutcome.LOST_TRACK
            row.last_error = (
                f"the outcome after hand-over is not known ({_describe(exc)}); check before resending"
            )
            move(session, row, Status.UNKNOWN, by=SYSTEM, at=self.clock(), note=row.last_error)
        log.warning(
            "outbox %s attempt %s: outcome unknown after hand-over (%s)",
            outbox_id,
            attempt,
            type(exc).__name__,
        )
        return DeliveryOutcome.UNKNOWN

    def _failed_attempt(self, outbox_id: int, attempt: int, exc: Exception) -> DeliveryOutcome:
        with self.db.transaction() as session:
            row = self._owned(session, outbox_id, attempt)
            if row is None:
                return DeliveryOutcome.LOST_TRACK
            return self._settle_failure(session, row, attempt, exc)

    def _settle_failure(
        self, session: Session, row: OutboxMessage, attempt: int, exc: Exception
    ) -> DeliveryOutcome:
        row.last_error = _describe(exc)
        permanent = isinstance(exc, PermanentDeliveryError) or (
            not isinstance(exc, DeliveryError) and isinstance(exc, _BUILD_ERRORS)
        )
        give_up = permanent or attempt >= self.retry.max_attempts
        now = self.clock()
        if give_up:
            move(session, row, Status.FAILED, by=SYSTEM, at=now, note=row.last_error)
        else:
            move(session, row, Status.QUEUED, by=SYSTEM, at=now)
            row.dispatched_at = None
            row.next_attempt_at = now + self.retry.backoff(attempt)
            not_before = getattr(exc, "not_before", None)  # a provider's daily limit
            if not_before is not None and not_before > row.next_attempt_at:
                row.next_attempt_at = not_before
        outcome = DeliveryOutcome.FAILED if give_up else DeliveryOutcome.RETRYING
        code = exc.code if isinstance(exc, DeliveryError) else None
        log.warning(
            "outbox %s attempt %s %s: %s (code %s)", row.id, attempt, outcome, type(exc).__name__, code
        )
        return outcome


def _describe(exc: Exception) -> str:
    """The error for the row's ``last_error``: caseloop's own errors say what they mean; others
    are named by type with their message, cut short (they never carry personal data we built,
    but a library's message can quote a header, so keep it brief)."""
    if isinstance(exc, CaseloopError):
        return str(exc)
    return f"{type(exc).__name__}: {str(exc)[:200]}"
