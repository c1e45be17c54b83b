"""``caseloop run`` serves the web beside the worker and the beat, and stopping it stops all three.

Also: production refuses to start the web without its secret key, in one clear line.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.e2e.engine import Engine, caseloop_script
from tests.e2e.services import SmtpSink, free_port, wait_until

pytestmark = pytest.mark.slow


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _port_closed(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_caseloop_run_serves_the_web_and_stops_it_with_the_worker(
    tmp_path: Path, smtp_sink: SmtpSink, make_engine: Callable[..., Engine]
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'caseloop.db'}", smtp_url=smtp_sink.url)
    engine.cli("db", "upgrade")
    port = free_port()
    run = engine.start("run", "--port", str(port))
    wait_until(
        lambda: _answers(f"http://127.0.0.1:{port}/healthz"), timeout=90, what="the web", diagnostics=run.log
    )
    # The beat sweeps and the worker runs: the web itself says it is ready.
    wait_until(
        lambda: _answers(f"http://127.0.0.1:{port}/readyz"), timeout=90, what="readiness", diagnostics=run.log
    )
    os.kill(run.pid, signal.SIGTERM)  # the main process only, as a service manager stops it
    run.popen.wait(timeout=60)
    wait_until(lambda: _port_closed(port), timeout=30, what="the web to stop", diagnostics=run.log)


def test_production_refuses_the_web_without_a_secret_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CASELOOP_", "CELERY"))}
    env.update(
        CASELOOP_ENVIRONMENT="production",
        CASELOOP_DATABASE_URL="postgresql+psycopg://caseloop@127.0.0.1:1/caseloop",
        CASELOOP_BROKER_URL="redis://127.0.0.1:1/0",
        CASELOOP_SMTP_URL="smtp://127.0.0.1:1",
        CASELOOP_VAR_DIR=str(tmp_path / "var"),
    )
    done = subprocess.run(
        [str(caseloop_script()), "web", "--port", str(free_port())],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "CASELOOP_SECRET_KEY" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
