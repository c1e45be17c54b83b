"""From an event posted to the API to the referrer's acknowledgement accepted by an SMTP server.

A real deployment: ``caseloop run`` (the web, a worker and the beat) on PostgreSQL and Redis,
delivering to an SMTP server the benchmark runs (aiosmtpd). Referrals are posted one request
each, at a steady pace, each with a referrer address of its own; the latency of one is the time
from just before its POST to the moment the SMTP server has the acknowledgement's last byte.
The beat sweeps only every minute: what makes the acknowledgement prompt is the web waking the
workers when a request makes letters due.

Baseline, in the same run: the bare round trip of the same steps without caseloop's engine in
between, an HTTP request to the same web server (``/healthz``) plus an SMTP send of a message of
the same size to the same SMTP server, from the benchmark's own process.
"""

from __future__ import annotations

import json
import os
import smtplib
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import redis
from aiosmtpd.controller import Controller

from benchmarks.harness import Bench, Figure, percentiles

PACE = 10.0  # referrals posted a second: a busy hour of a whole region, well above a council's
TARGET_P95 = 2.0
STARTUP_SECONDS = 120.0


class _Arrivals:
    """The SMTP server's side: when each recipient's message was accepted, and its size."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.sizes: list[int] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.perf_counter()
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.at.setdefault(rcpt.lower(), now)
            self.sizes.append(len(envelope.content))
        return "250 OK"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _referral(i: int, run: str) -> dict[str, Any]:
    at = datetime.now(UTC).replace(microsecond=0).isoformat()
    return {
        "id": f"lat-{run}-{i}",
        "case": f"LAT-{run}-{i:05d}",
        "type": "referral.received",
        "at": at,
        "team": "front-door",
        "flags": [],
        "child": {"name": "Bench Child", "dob": "2016-05-01"},
        "referrer": {
            "source": "2A",
            "organisation": "Bench Primary",
            "name": "Bench Referrer",
            "email": f"ref-{run}-{i}@school.example",
        },
        "household": [],
    }


def _caseloop(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"caseloop {' '.join(args)} exited {done.returncode}: {done.stderr.strip()[-500:]}"
        )
    return done.stdout


def _wait(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {seconds:.0f} s for {what}")
        time.sleep(0.05)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def run(bench: Bench) -> list[Figure]:
    if not (bench.postgres_url and bench.redis_url):
        return [Figure("latency", "could not run", note="needs --postgres and --redis", met=False)]
    count = 50 if bench.quick else 1_000
    with bench.postgres_schema() as url:
        return measure(bench, url, count)


def measure(bench: Bench, database_url: str, count: int) -> list[Figure]:
    assert bench.redis_url is not None
    redis.Redis.from_url(bench.redis_url).flushdb()
    arrivals = _Arrivals()
    smtp = Controller(arrivals, hostname="127.0.0.1", port=_free_port(), server_hostname="bench.localhost")
    smtp.start()
    var = bench.folder / "latency"
    var.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    web = f"http://127.0.0.1:{port}"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CASELOOP_", "CELERY"))}
    env = {
        **base,
        "CASELOOP_DATABASE_URL": database_url,
        "CASELOOP_BROKER_URL": bench.redis_url,
        "CASELOOP_SMTP_URL": f"smtp://127.0.0.1:{smtp.port}",
        "CASELOOP_MAIL_FROM": "caseloop@council.example",
        "CASELOOP_BASE_URL": "https://caseloop.council.example",
        "CASELOOP_VAR_DIR": str(var),
        "CASELOOP_ENVIRONMENT": "test",
    }
    engine: subprocess.Popen[bytes] | None = None
    log = var / "run.log"
    try:
        _caseloop(env, "db", "upgrade")
        token = (
            _caseloop(env, "tokens", "create", "bench", "--scope", "events:write").strip().splitlines()[-1]
        )
        with log.open("wb") as out:
            engine = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "run", "--port", str(port)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=Path(__file__).resolve().parent.parent,
                start_new_session=True,
            )
        _wait(lambda: _ready(web), STARTUP_SECONDS, "caseloop run to be ready")
        run_tag = f"{int(time.time())}"
        posted: dict[str, float] = {}
        refused = 0
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            started = time.perf_counter()
            for i in range(count):
                # A steady pace, not a burst: each referral's latency is its own, not a queue's.
                time.sleep(max(0.0, started + i / PACE - time.perf_counter()))
                event = _referral(i, run_tag)
                posted[event["referrer"]["email"]] = time.perf_counter()
                answer = client.post(f"{web}/api/events", content=json.dumps({"events": [event]}))
                if answer.status_code != 200 or answer.json()["results"][0]["status"] != "accepted":
                    refused += 1
        if refused:
            raise RuntimeError(f"{refused} referrals were not accepted: see {log.name}")
        _wait(lambda: all(a in arrivals.at for a in posted), 120, f"{count} acknowledgements")
        latencies = [arrivals.at[a] - t for a, t in posted.items()]
        baseline = _baseline(web, smtp.port, arrivals, count)
    finally:
        if engine is not None:
            engine.terminate()
            try:
                engine.wait(timeout=60)
            except subprocess.TimeoutExpired:
                engine.kill()
        smtp.stop()
    p50, p95 = percentiles(latencies)
    b50, b95 = percentiles(baseline)
    return [
        Figure(
            f"latency: API to SMTP, {count:,} referrals",
            f"p50 {1000 * p50:.0f} ms, p95 {1000 * p95:.0f} ms",
            f"p50 {1000 * b50:.0f} ms, p95 {1000 * b95:.0f} ms",
            p95 / b95,
            f"p95 < {TARGET_P95:.0f} s",
            p95 < TARGET_P95,
            note=f"posted at {PACE:.0f} a second to caseloop run (web, worker, beat sweeping every 60 s) on "
            "PostgreSQL and Redis; the baseline is an HTTP request to the same server plus an SMTP send "
            "of the same size",
        )
    ]


def _baseline(web: str, port: int, arrivals: _Arrivals, count: int) -> list[float]:
    size = sorted(arrivals.sizes)[len(arrivals.sizes) // 2]
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "bench@council.example", "b@school.example", "b"
    message.set_content("x" * max(1, size - 200))
    samples = []
    with httpx.Client(timeout=30) as client:
        for _ in range(count):
            start = time.perf_counter()
            client.get(f"{web}/healthz")
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
                smtp.send_message(message)
            samples.append(time.perf_counter() - start)
    return samples
