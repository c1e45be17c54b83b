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

ROUTES = {
    SWEEP_TASK: {"queue": SWEEP_QUEUE, "routing_key": SWEEP_QUEUE},
    DELIVER_TASK: {"queue": DELIVERY_QUEUE, "routing_key": DELIVERY_QUEUE},
    CONFIRM_TASK: {"queue": STATUS_QUEUE, "routing_key": STATUS_QUEUE},
    READ_STATUSES_TASK: {"queue": STATUS_QUEUE, "routing_key": STATUS_QUEUE},
}
