"""Long-running processes: the Celery worker, the beat, and both together for one machine."""

from __future__ import annotations

import os
import socket
from typing import Annotated

import typer
from celery import Celery

from cli.app import app, cli_context
from config.celery import make_celery
from config.queues import QUEUES, SWEEP_TASK
from config.settings import get_settings


def _worker_args(concurrency: int | None, beat: bool) -> list[str]:
    settings = get_settings()
    args = [
        "worker",
        "--loglevel=INFO",
        f"--queues={','.join(QUEUES)}",
        # Prefork: the only pool in which Celery enforces the task time limits that the sending
        # timeout relies on (a thread cannot be stopped).
        "--pool=prefork",
        f"--concurrency={concurrency or settings.worker_concurrency}",
        f"--hostname=caseloop-{os.getpid()}@{socket.gethostname()}",
        "--without-gossip",
        "--without-mingle",
    ]
    if beat:
        args.append("--beat")
    return args


@app.command("worker")
def worker(
    concurrency: Annotated[int | None, typer.Option(help="Processes sending at once.")] = None,
) -> None:
    """Run a worker: it consumes every caseloop queue."""
    make_celery(get_settings()).worker_main(_worker_args(concurrency, beat=False))


def _sweep_now(celery: Celery) -> None:
    """Queue one sweep at start-up: the beat's first would otherwise wait a whole interval.
    A sweep more is harmless: every claim it makes is idempotent."""
    celery.send_task(SWEEP_TASK, expires=get_settings().sweep_interval_seconds)


@app.command("beat")
def beat() -> None:
    """Run the beat: it queues the sweeper every minute. Run one; a second is harmless, not useful."""
    celery = make_celery(get_settings())
    _sweep_now(celery)
    celery.start(["beat", "--loglevel=INFO"])


@app.command("web")
def web(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="The address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The port to listen on.", min=1, max=65535)] = 8000,
) -> None:
    """Serve the integration API and operations endpoints (uvicorn)."""
    from web.server import serve  # the web stack loads only for this command

    with cli_context(ctx).runtime() as rt:
        serve(rt, host, port)


@app.command("run")
def run_all(
    concurrency: Annotated[int | None, typer.Option(help="Processes sending at once.")] = None,
) -> None:
    """Run a worker and the beat in one process: the engine on one machine."""
    celery = make_celery(get_settings())
    _sweep_now(celery)
    celery.worker_main(_worker_args(concurrency, beat=True))
