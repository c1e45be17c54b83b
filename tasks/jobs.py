"""The Celery tasks. Thin: each takes ids (or nothing), calls a service, and lets errors show.

``caseloop.sweep`` runs the time-driven pass and queues one ``caseloop.deliver`` per message
claimed; ``caseloop.deliver`` sends one outbox message. Neither carries personal data: the only
argument that ever crosses the broker is an outbox row's id.
"""

from __future__ import annotations

import logging

from celery import shared_task

from config.queues import DELIVER_TASK, SWEEP_TASK
from tasks import runtime

log = logging.getLogger(__name__)


@shared_task(name=SWEEP_TASK)  # type: ignore[untyped-decorator]
def sweep() -> None:
    rt = runtime.current()
    report = rt.sweep(rt.clock())
    if report.skipped:
        log.info("sweep skipped: another sweep holds the lock")
        return
    # Only after the claims are committed: a rolled-back pass queues nothing.
    for outbox_id in report.to_deliver:
        deliver.delay(outbox_id)
    log.info("sweep: %s", report.summary())


@shared_task(name=DELIVER_TASK)  # type: ignore[untyped-decorator]
def deliver(outbox_id: int) -> None:
    outcome = runtime.current().deliverer().deliver(int(outbox_id))
    log.info("deliver outbox %s: %s", outbox_id, outcome)
