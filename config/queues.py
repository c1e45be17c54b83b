"""Stable names of queues and tasks. Renaming one strands the messages already queued under it."""

from __future__ import annotations

SWEEP_QUEUE = "caseloop.sweep"
DELIVERY_QUEUE = "caseloop.delivery"
QUEUES = (SWEEP_QUEUE, DELIVERY_QUEUE)

SWEEP_TASK = "caseloop.sweep"
DELIVER_TASK = "caseloop.deliver"

ROUTES = {
    SWEEP_TASK: {"queue": SWEEP_QUEUE, "routing_key": SWEEP_QUEUE},
    DELIVER_TASK: {"queue": DELIVERY_QUEUE, "routing_key": DELIVERY_QUEUE},
}
