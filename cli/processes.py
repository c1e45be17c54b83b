"""Long-running processes: the Celery worker, the beat, the web, and all three together for one
machine (``caseloop run``)."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, Annotated

import typer

from cli.app import app, cli_context

# Celery is imported by the commands that start it: every other command starts without it.
if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger(__name__)
WEB_GRACE_SECONDS = 10.0  # for the web to finish the requests in flight when caseloop run stops


def _worker_args(concurrency: int | None, beat: bool) -> list[str]:
    from config.queues import QUEUES
    from config.settings import get_settings

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
    from config.celery import make_celery
    from config.settings import get_settings

    make_celery(get_settings()).worker_main(_worker_args(concurrency, beat=False))


def _sweep_now(celery: Celery) -> None:
    """Queue one sweep at start-up: the beat's first would otherwise wait a whole interval.
    A sweep more is harmless: every claim it makes is idempotent."""
    from config.queues import SWEEP_TASK
    from config.settings import get_settings

    celery.send_task(SWEEP_TASK, expires=get_settings().sweep_interval_seconds)


@app.command("beat")
def beat() -> None:
    """Run the beat: it queues the sweeper every minute. Run one; a second is harmless, not useful."""
    from config.celery import make_celery
    from config.settings import get_settings

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
    from config.wiring import serving
    from web.server import serve  # the web stack loads only for this command

    with cli_context(ctx).runtime() as rt:
        serve(serving(rt), host, port)


def _start_web(host: str, port: int) -> subprocess.Popen[bytes]:
    """``caseloop web`` as a process of its own: the worker's pool forks, and a fork must not
    carry a running server's threads and sockets into every child."""
    return subprocess.Popen([sys.executable, "-m", "cli.main", "web", "--host", host, "--port", str(port)])


def _watch_web(web: subprocess.Popen[bytes], stopping: threading.Event) -> None:
    """Say so if the web stops by itself: the worker and the beat go on (letters matter more)."""
    code = web.wait()
    if not stopping.is_set():
        log.error("caseloop run: the web server exited with status %s; the worker and beat go on", code)


def _stop_web(web: subprocess.Popen[bytes], stopping: threading.Event) -> None:
    stopping.set()
    if web.poll() is None:
        web.terminate()  # uvicorn's graceful shutdown: requests in flight are answered
        try:
            web.wait(timeout=WEB_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            web.kill()
            web.wait()


@app.command("run")
def run_all(
    concurrency: Annotated[int | None, typer.Option(help="Processes sending at once.")] = None,
    host: Annotated[str, typer.Option(help="The address the web listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The port the web listens on.", min=1, max=65535)] = 8000,
    web: Annotated[bool, typer.Option(help="Serve the web beside the worker and the beat.")] = True,
) -> None:
    """Run a worker and the beat in one process, and the web beside them: the engine on one machine.
    Stopping it (Ctrl-C, SIGTERM) stops all three."""
    from config.celery import make_celery
    from config.settings import get_settings

    settings = get_settings()  # before anything starts: bad settings stop all three at once
    celery = make_celery(settings)
    _sweep_now(celery)
    server = _start_web(host, port) if web else None
    stopping = threading.Event()
    if server is not None:
        threading.Thread(target=_watch_web, args=(server, stopping), name="web-watch", daemon=True).start()
    try:
        celery.worker_main(_worker_args(concurrency, beat=True))
    finally:
        if server is not None:
            _stop_web(server, stopping)
