"""The Celery application, built from settings when a process asks for it (never at import).

Settings chosen for work that must not be lost: late acknowledgement and reject-on-worker-lost
(a message is redelivered if its worker dies), prefetch of one, JSON only, hard and soft time
limits. Messages carry ids only. Deadlines are never ETAs: the beat's sweeper reads them from the
database. Without ``CASELOOP_BROKER_URL`` the broker is embedded: message files in ``var/broker``,
no server. It may lose a message on a crash; the sweeper re-dispatches anything not finished.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from celery import Celery
from kombu import Exchange, Queue  # type: ignore[attr-defined]

from config.queues import DISPATCH_TASK, QUEUES, ROUTES, SWEEP_TASK
from config.settings import Settings


def broker_options(settings: Settings) -> tuple[str, dict[str, Any]]:
    if settings.broker_url:
        return settings.broker_url, {"visibility_timeout": settings.broker_visibility_timeout}
    folder = settings.broker_dir.resolve()
    for sub in ("queue", "processed", "control"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return "filesystem://", {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
        # kombu keeps its exchange tables here; by default it would write ./control wherever it runs.
        "control_folder": str(folder / "control"),
        "store_processed": False,
        # Files are polled: a short interval keeps a backlog of letters moving on one machine.
        "polling_interval": 0.1,
    }


def make_celery(settings: Settings) -> Celery:
    settings.var_dir.mkdir(parents=True, exist_ok=True)  # the beat keeps its schedule there
    url, transport_options = broker_options(settings)
    app = Celery("caseloop", set_as_current=True)
    app.conf.update(
        broker_url=url,
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_time_limit=settings.task_time_limit,
        task_soft_time_limit=max(1, int(settings.task_time_limit * 0.8)),
        # One direct exchange and routing key per queue, so a message lands in exactly one queue.
        task_queues=[Queue(q, Exchange(q), routing_key=q) for q in QUEUES],  # type: ignore[no-untyped-call]
        task_routes=ROUTES,
        task_create_missing_queues=False,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_hijack_root_logger=False,
        enable_utc=True,
        timezone="UTC",
        beat_schedule={
            "sweep": {
                "task": SWEEP_TASK,
                "schedule": settings.sweep_interval_seconds,
                # A sweep not started within one interval is pointless: the next one is coming.
                "options": {"expires": settings.sweep_interval_seconds},
            }
        },
        beat_schedule_filename=str((settings.var_dir / "celerybeat-schedule").resolve()),
        imports=("tasks.jobs",),
    )
    return app


log = logging.getLogger(__name__)


def waker(settings: Settings) -> Callable[[], None]:
    """A callable that queues one ``caseloop.dispatch``: for a process that serves requests, so
    that what a request made due goes out in seconds rather than at the next sweep.

    The Celery app is built on first use. The message expires after one sweep interval (by then
    the sweep has handed out the same rows), and a broker that cannot be reached costs one failed
    attempt and a warning: the sweep still hands the rows out, so nothing waits for ever.
    """
    app: Celery | None = None
    lock = threading.Lock()  # the web serves requests on a thread pool

    def wake() -> None:
        nonlocal app
        try:
            with lock:
                if app is None:
                    app = make_celery(settings)
            app.send_task(DISPATCH_TASK, expires=settings.sweep_interval_seconds, retry=False)
        except Exception as exc:  # the type only: a broker's message may quote its URL
            log.warning(
                "could not wake the workers (%s): the next sweep hands out what is due", type(exc).__name__
            )

    return wake
