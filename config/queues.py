"""Stable names of queues and tasks. Renaming one strands the messages already queued under it."""

from __future__ import annotations

SWEEP_QUEUE = "caseloop.sweep"
DELIVERY_QUEUE = "caseloop.delivery"
# Asking providers (Notify) about messages: slow answers never hold up a delivery or a sweep.
STATUS_QUEUE = "caseloop.status"
QUEUES = (SWEEP_QUEUE, DELIVERY_QUEUE, STATUS_QUEUE)

SWEEP_TASK = "caseloop.sweep"
DELIVER_TASK = "caseloop.deliver"
CONFIRM_TASK = "caseloop.confirm"
READ_STATUSES_TASK = "caseloop.read_statuses"
# Hand out what is due now: queued by a process that has just made messages due (an import, an
# approval), so a letter goes in seconds rather than at the next sweep. On the sweep queue, so it
# never waits behind a backlog of deliveries.
DISPATCH_TASK = "caseloop.dispatch"

ROUTES = {
    SWEEP_TASK: {"queue": SWEEP_QUEUE, "routing_key": SWEEP_QUEUE},
    DISPATCH_TASK: {"queue": SWEEP_QUEUE, "routing_key": SWEEP_QUEUE},
    DELIVER_TASK: {"queue": DELIVERY_QUEUE, "routing_key": DELIVERY_QUEUE},
    CONFIRM_TASK: {"queue": STATUS_QUEUE, "routing_key": STATUS_QUEUE},
    READ_STATUSES_TASK: {"queue": STATUS_QUEUE, "routing_key": STATUS_QUEUE},
}
