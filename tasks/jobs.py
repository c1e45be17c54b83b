"""The Celery tasks. Thin: each takes ids (or nothing), calls a service as caseloop itself, and
lets errors show.

``caseloop.sweep`` runs the time-driven pass and queues one task for each piece of work it
claimed: ``caseloop.deliver`` per message (each, when done, hands out the next due one),
``caseloop.confirm`` for messages a dead worker left ``unknown``, ``caseloop.read_statuses`` per
batch of sent messages to ask a provider about. ``caseloop.dispatch`` hands out what became due
between sweeps (an event posted to the API, a letter approved). None carries personal data: the only arguments
that ever cross the broker are outbox row ids.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from celery import Celery, Task, shared_task
from kombu.exceptions import ChannelError

from config.queues import (
    CONFIRM_TASK,
    DELIVER_TASK,
    DELIVERY_QUEUE,
    DISPATCH_TASK,
    READ_STATUSES_TASK,
    SWEEP_TASK,
)
from services import sweep as sweeping
from services.actors import SYSTEM
from tasks import runtime

log = logging.getLogger(__name__)


class TaskFailed(Exception):
    """What a task raises instead of an error that escaped a service. Celery logs a failed
    task's exception text and traceback, and that text can quote a recipient's address (a
    provider's refusal, a library's message); this names the error's type and the ids only.
    The row's ``last_error`` keeps the detail, where the worker who reads it may see it."""


@contextmanager
def _reported(what: str) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        log.error("%s failed (%s)", what, type(exc).__name__)
        # No chaining: Celery would print the original's text with the traceback.
        raise TaskFailed(f"{what} failed ({type(exc).__name__})") from None


def _waiting_deliveries(app: Celery) -> int | None:
    """Delivery messages the broker holds that no worker has taken yet, or None if it cannot
    say (then nothing is re-dispatched this pass: a message is never presumed lost unseen)."""
    try:
        with app.connection_for_read() as connection:
            channel = connection.default_channel
            try:
                declared = channel.queue_declare(queue=DELIVERY_QUEUE, passive=True)
            except ChannelError:  # Redis drops an empty list: no queue is an empty queue
                return 0
            return int(declared.message_count)
    except Exception as exc:  # the broker is down or slow: the claims can wait a pass
        log.warning("sweep: cannot count the delivery queue (%s)", type(exc).__name__)
        return None


@shared_task(name=SWEEP_TASK, bind=True)  # type: ignore[untyped-decorator]
def sweep(self: Task) -> None:
    with _reported("sweep"):
        _sweep(self)


def _sweep(self: Task) -> None:
    rt = runtime.current()
    now = rt.clock()
    dispatch = sweeping.to_broker(rt, now, _waiting_deliveries(self.app))
    report = sweeping.sweep(rt, SYSTEM, now, dispatch)
    # Only after each step's claims are committed: a rolled-back step queues nothing.
    for outbox_id in report.to_deliver:
        deliver.delay(outbox_id)
    if report.to_confirm:
        confirm.delay(report.to_confirm)
    for start in range(0, len(report.to_read), sweeping.STATUS_READ_BATCH):
        read_statuses.delay(report.to_read[start : start + sweeping.STATUS_READ_BATCH])
    log.info("sweep: %s", report.summary())


@shared_task(name=DELIVER_TASK)  # type: ignore[untyped-decorator]
def deliver(outbox_id: int) -> None:
    rt = runtime.current()
    with _reported(f"deliver outbox {int(outbox_id)}"):
        outcome = sweeping.deliver(rt, SYSTEM, int(outbox_id))
    log.info("deliver outbox %s: %s", outbox_id, outcome)
    # This slot is free: hand out the next due message, if the broker has room for it.
    with _reported("refill after a delivery"):
        claimed = sweeping.refill(rt, SYSTEM, rt.clock())
    for next_id in claimed:
        deliver.delay(next_id)


@shared_task(name=DISPATCH_TASK)  # type: ignore[untyped-decorator]
def dispatch() -> None:
    """Hand out what is due now, as a delivery's refill does: queued by a process that has just
    made messages due, so they need not wait for the next sweep. Only rows never dispatched are
    claimed, and claims lock rows, so a wake that arrives twice or late hands out nothing twice."""
    rt = runtime.current()
    with _reported("dispatch"):
        claimed = sweeping.refill(rt, SYSTEM, rt.clock())
    for next_id in claimed:
        deliver.delay(next_id)


@shared_task(name=CONFIRM_TASK)  # type: ignore[untyped-decorator]
def confirm(outbox_ids: list[int]) -> None:
    rt = runtime.current()
    ids = [int(i) for i in outbox_ids]
    with _reported(f"confirm outbox {', '.join(map(str, ids))}"):
        log.info("confirm: %s", sweeping.confirm(rt, SYSTEM, ids, rt.clock()))


@shared_task(name=READ_STATUSES_TASK)  # type: ignore[untyped-decorator]
def read_statuses(outbox_ids: list[int]) -> None:
    rt = runtime.current()
    ids = [int(i) for i in outbox_ids]
    with _reported(f"read statuses of outbox {', '.join(map(str, ids))}"):
        log.info("statuses: %s", sweeping.read_statuses(rt, SYSTEM, ids, rt.clock()))
