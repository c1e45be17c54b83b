"""Readiness and metrics on a real uvicorn, over SQLite and PostgreSQL (and a real Redis where named).

Readiness must see progress, not only liveness: a worker that stopped consuming (messages handed
to the broker, no delivery started) and a beat that stopped (the sweep growing old) both fail it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from config.celery import broker_options
from config.queues import DELIVERY_QUEUE, STATUS_QUEUE, SWEEP_QUEUE
from config.settings import Settings
from config.wiring import Runtime, build_runtime
from migrations import upgrade
from services import sweep as sweeping
from services.actors import SYSTEM
from tests.conftest import require
from tests.factories import import_events, referral
from tests.web.conftest import LiveServer
from web.metrics import HttpMetrics, Metrics

CANARY_CHILD = "Canary Quillfeather Metrics"
CANARY_EMAIL = "canary.metrics@school.example"


def make_runtime(database_url: str, var_dir: Path, **settings: Any) -> Runtime:
    upgrade(database_url)
    built = Settings(database_url=database_url, var_dir=var_dir, **settings)
    if not built.broker_url:
        broker_options(built)  # makes the embedded broker's folders, as a worker does on start
    return build_runtime(built)


@pytest.fixture
def runtime(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    """Overrides the shared runtime: its local state (the embedded broker) under tmp_path."""
    rt = make_runtime(database_url, tmp_path / "var")
    yield rt
    rt.close()


def refer(rt: Runtime, at: str = "2026-11-02T09:00:00+00:00", case: str = "C1") -> None:
    child = {"name": CANARY_CHILD, "dob": "2016-05-01"}
    school = {
        "source": "2A",
        "organisation": "Test Primary",
        "name": "Referrer Example",
        "email": CANARY_EMAIL,
    }
    report = import_events(rt, referral(case, at, child=child, referrer=school), now=at)
    assert report.ok, report.rejected


def sweep_at(rt: Runtime, now: datetime) -> sweeping.SweepReport:
    """A sweep as the beat's: what it claims is handed to the broker, not delivered here."""
    return sweeping.sweep(rt, SYSTEM, now, sweeping.to_broker(rt, now, waiting=0))


def ready(live_server: LiveServer) -> httpx.Response:
    with live_server.client() as http:
        return http.get("/readyz")


def test_not_ready_until_a_sweep_has_finished(live_server: LiveServer) -> None:
    before = ready(live_server)
    assert before.status_code == 503
    assert before.json()["failing"] == ["sweep"]
    assert "no sweep has finished" in before.json()["checks"]["sweep"]["problem"]
    sweep_at(live_server.runtime, datetime.now(UTC))
    after = ready(live_server)
    assert after.status_code == 200, after.json()
    body = after.json()
    assert body["status"] == "ready" and body["failing"] == []
    assert set(body["checks"]) == {"database", "broker", "sweep", "delivery"}
    assert body["checks"]["broker"] == {"ok": True, "kind": "filesystem"}
    assert 0 <= body["checks"]["sweep"]["age_seconds"] < 60


def test_a_worker_that_stopped_consuming_makes_it_fail(live_server: LiveServer) -> None:
    rt = live_server.runtime
    refer(rt)
    # The sweep handed the letters to the broker an hour ago, and no worker has started one since.
    claimed = sweep_at(rt, datetime.now(UTC) - timedelta(hours=1)).to_deliver
    assert claimed
    answer = ready(live_server)
    assert answer.status_code == 503
    body = answer.json()
    assert body["failing"] == ["delivery"]
    delivery = body["checks"]["delivery"]
    assert delivery["waiting"] == len(claimed) and delivery["last_attempt_age_seconds"] is None
    assert delivery["oldest_waiting_seconds"] > 3000
    assert "are the workers consuming" in delivery["problem"]
    # A worker takes them: ready again.
    for outbox_id in claimed:
        sweeping.deliver(rt, SYSTEM, outbox_id)
    assert ready(live_server).status_code == 200


def test_a_beat_that_stopped_makes_it_fail(live_server: LiveServer) -> None:
    rt = live_server.runtime
    sweep_at(rt, datetime.now(UTC))
    rt.clock = lambda: datetime.now(UTC) + timedelta(minutes=10)  # ten minutes without a sweep
    answer = ready(live_server)
    assert (answer.status_code, answer.json()["failing"]) == (503, ["sweep"])
    assert "is the beat running" in answer.json()["checks"]["sweep"]["problem"]


def test_an_embedded_broker_that_cannot_be_written_makes_it_fail(database_url: str, tmp_path: Path) -> None:
    rt = make_runtime(database_url, tmp_path / "var")
    queue = rt.settings.broker_dir / "queue"
    for leftover in queue.iterdir():
        leftover.unlink()
    queue.rmdir()
    queue.write_text("not a folder")  # a write into it fails, even for root
    try:
        sweep_at(rt, datetime.now(UTC))
        from services.operations import readiness

        found = readiness(rt)
    finally:
        rt.close()
    assert found.failing == ["broker"]
    assert "does not exist" in (found.checks[1].problem or "")


@pytest.mark.redis
def test_on_redis_the_broker_is_pinged_and_queue_depths_are_read(database_url: str, tmp_path: Path) -> None:
    url = require("CASELOOP_TEST_REDIS_URL", "Redis", os.environ.get("CASELOOP_TEST_REDIS_URL"))
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.rpush(DELIVERY_QUEUE, "m1", "m2", "m3")
    client.rpush(STATUS_QUEUE, "m4")
    rt = make_runtime(database_url, tmp_path / "var", broker_url=url)
    try:
        sweep_at(rt, datetime.now(UTC))
        from services.operations import queue_depths, readiness

        assert readiness(rt).ready
        assert queue_depths(rt) == {SWEEP_QUEUE: 0, DELIVERY_QUEUE: 3, STATUS_QUEUE: 1}
    finally:
        rt.close()
        client.flushdb()
        client.close()
    dead = make_runtime(database_url, tmp_path / "var2", broker_url="redis://127.0.0.1:1/0")
    try:
        from services.operations import readiness

        found = readiness(dead)
    finally:
        dead.close()
    assert "broker" in found.failing
    assert "Redis does not answer" in (found.checks[1].problem or "")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_count_messages_clocks_overdue_and_requests_without_personal_data(
    live_server: LiveServer,
) -> None:
    rt = live_server.runtime
    refer(rt, at="2026-01-05T09:00:00+00:00")  # long ago: its decision clock is overdue
    report = sweep_at(rt, datetime.now(UTC))
    with live_server.client() as http:
        http.get("/healthz")
        http.get(f"/cases/{CANARY_CHILD}")  # a page (the case timeline): labelled by its template
        http.get(f"/no-such-page/{CANARY_CHILD}")  # no such route: its path must never become a label
        answer = http.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    assert CANARY_CHILD not in text and "Quillfeather" not in text and CANARY_EMAIL not in text
    found = samples(text)
    queued = found[("caseloop_outbox_messages", (("channel", "file"), ("status", "queued")))]
    assert queued == len(report.to_deliver) > 0
    assert found[("caseloop_overdue_clocks", (("team", "front-door"),))] >= 1
    assert any(
        name == "caseloop_clocks" and dict(labels).get("clock") == "decision" for name, labels in found
    )
    assert found[("caseloop_queue_depth", (("queue", DELIVERY_QUEUE),))] == 0
    assert found[("caseloop_deliveries_waiting", ())] == len(report.to_deliver)
    assert 0 <= found[("caseloop_sweep_age_seconds", ())] < 60
    assert found[("caseloop_sweep_duration_seconds", ())] > 0
    health = (("method", "GET"), ("route", "/healthz"), ("status", "200"))
    timeline = (("method", "GET"), ("route", "/cases/{ref:path}"), ("status", "303"))  # to sign in
    assert found[("caseloop_http_requests_total", timeline)] == 1
    assert found[("caseloop_http_requests_total", health)] == 1
    assert (
        found[
            ("caseloop_http_requests_total", (("method", "GET"), ("route", "unmatched"), ("status", "404")))
        ]
        == 1
    )


def test_http_requests_are_labelled_by_route_template(runtime: Runtime) -> None:
    app = FastAPI()
    metrics = Metrics(runtime)

    @app.get("/cases/{ref}")
    def case(ref: str) -> dict[str, str]:
        if ref == "boom":
            raise RuntimeError("an error that escapes")
        return {"ref": ref}

    app.add_middleware(HttpMetrics, metrics=metrics)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)

    async def calls() -> None:
        async with httpx.AsyncClient(transport=transport, base_url="http://caseloop.test") as http:
            for ref in ("C1", "C%202", "boom"):
                await http.get(f"/cases/{ref}")

    import asyncio

    asyncio.run(calls())
    counted = {
        tuple(sorted(s.labels.items())): s.value
        for family in metrics.registry.collect()
        if family.name == "caseloop_http_requests"
        for s in family.samples
        if s.name.endswith("_total")
    }
    assert counted == {
        (("method", "GET"), ("route", "/cases/{ref}"), ("status", "200")): 2,
        (("method", "GET"), ("route", "/cases/{ref}"), ("status", "500")): 1,
    }
