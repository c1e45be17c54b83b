"""The Celery tasks. Thin: each takes ids (or nothing), calls a service as caseloop itself, and
lets errors show.

``caseloop.sweep`` runs the time-driven pass and queues one task for each piece of work it
claimed: ``caseloop.deliver`` per message, ``caseloop.confirm`` for messages a dead worker left
``unknown``, ``caseloop.read_statuses`` per batch of sent messages to ask a provider about. None
carries personal data: the only arguments that ever cross the broker are outbox row ids.
"""

from __future__ import annotations

import logging

from celery import shared_task

from config.queues import CONFIRM_TASK, DELIVER_TASK, READ_STATUSES_TASK, SWEEP_TASK
from services import sweep as sweeping
from services.actors import SYSTEM
from tasks import runtime

log = logging.getLogger(__name__)


@shared_task(name=SWEEP_TASK)  # type: ignore[untyped-decorator]
def sweep() -> None:
    rt = runtime.current()
    report = sweeping.sweep(rt, SYSTEM, rt.clock())
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
    outcome = sweeping.deliver(runtime.current(), SYSTEM, int(outbox_id))
    log.info("deliver outbox %s: %s", outbox_id, outcome)


@shared_task(name=CONFIRM_TASK)  # type: ignore[untyped-decorator]
def confirm(outbox_ids: list[int]) -> None:
    rt = runtime.current()
    log.info("confirm: %s", sweeping.confirm(rt, SYSTEM, [int(i) for i in outbox_ids], rt.clock()))


@shared_task(name=READ_STATUSES_TASK)  # type: ignore[untyped-decorator]
def read_statuses(outbox_ids: list[int]) -> None:
    rt = runtime.current()
    log.info("statuses: %s", sweeping.read_statuses(rt, SYSTEM, [int(i) for i in outbox_ids], rt.clock()))
