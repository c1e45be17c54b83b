"""A caseloop worker with one benchmark-only task more: ``bench.noop``, which does nothing.

    python -m benchmarks.celery_worker [CONCURRENCY]

The same application, settings, broker, queues and worker arguments as ``caseloop worker``, so
the no-op baseline and caseloop's deliveries are consumed by the same kind of process. The no-op
task is routed to the delivery queue and never registered outside benchmarks.
"""

from __future__ import annotations

import sys

from cli.processes import _worker_args
from config.celery import make_celery
from config.queues import DELIVERY_QUEUE
from config.settings import get_settings

NOOP_TASK = "bench.noop"


def main(argv: list[str]) -> None:
    concurrency = int(argv[0]) if argv else None
    app = make_celery(get_settings())
    app.conf.task_routes = {**app.conf.task_routes, NOOP_TASK: {"queue": DELIVERY_QUEUE}}

    @app.task(name=NOOP_TASK)  # type: ignore[untyped-decorator]
    def noop() -> None:
        """The baseline: a task message taken, run and acknowledged, and nothing else."""

    app.worker_main(_worker_args(concurrency, beat=False))


if __name__ == "__main__":
    main(sys.argv[1:])
