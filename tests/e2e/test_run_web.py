"""``caseloop run`` serves the web beside the worker and the beat, and stopping it stops all three.

What a request makes due goes out at once: the web wakes the workers rather than waiting for the
next sweep.

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
from tests.factories import referral
from workflow.timeutil import utc_now

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


def test_an_event_posted_to_the_api_is_acknowledged_before_the_next_sweep(
    tmp_path: Path, smtp_sink: SmtpSink, make_engine: Callable[..., Engine]
) -> None:
    """The web wakes the workers when a request makes letters due: the referrer's
    acknowledgement goes in seconds, although the beat sweeps only every 15 minutes."""
    engine = make_engine(
        f"sqlite:///{tmp_path / 'caseloop.db'}",
        smtp_url=smtp_sink.url,
        settings={
            "CASELOOP_SWEEP_INTERVAL_SECONDS": "900",
            "CASELOOP_TASK_TIME_LIMIT": "60",
            "CASELOOP_SENDING_TIMEOUT": "90",
        },
    )
    engine.prepare([])
    token = (
        engine.cli("tokens", "create", "case-system", "--scope", "events:write")
        .stdout.strip()
        .splitlines()[-1]
    )
    port = free_port()
    run = engine.start("run", "--port", str(port))
    wait_until(
        lambda: _answers(f"http://127.0.0.1:{port}/readyz"),
        timeout=120,
        what="readiness",
        diagnostics=run.log,
    )
    # The beat's first sweep has run (readiness says so); the next is 15 minutes away.
    posted = httpx.post(
        f"http://127.0.0.1:{port}/api/events",
        json={"events": [referral("WAKE-1", utc_now().isoformat(timespec="seconds"), id="wake-1")]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert posted.status_code == 200, posted.text
    assert posted.json()["results"][0]["status"] == "accepted"
    wait_until(
        lambda: smtp_sink.recipients()["ref@school.example"] == 1,
        timeout=120,
        what="the referrer's acknowledgement",
        diagnostics=run.log,
    )
