"""A front door served by caseloop's real processes, for the browser journeys.

``caseloop run`` (a Celery worker, the beat and the web, as one machine runs them) on PostgreSQL
and Redis, delivering email to a real SMTP server. Data goes in through the CLI; logins are made
through the same service ``caseloop users add`` calls. The processes use the real clock, so the
events are dated relative to now.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis
from sqlalchemy.engine import make_url

from config.settings import Settings
from config.wiring import build_runtime
from services import access
from services.actors import SYSTEM
from tests.e2e.conftest import xdist_worker
from tests.e2e.engine import Engine, Member, front_door_staff
from tests.e2e.services import SmtpSink, free_port, wait_until
from tests.factories import event, person, referral

PASSWORD = "a password for the browser tests"
OTHER_TEAM = "assessment-east"
STARTUP_SECONDS = 120.0


def _day(days_ago: int, hour: int = 10) -> str:
    moment = datetime.now(UTC) - timedelta(days=days_ago)
    return moment.replace(hour=hour, minute=0, second=0, microsecond=0).isoformat()


def journey_cases(tag: str) -> list[dict[str, Any]]:
    """The cases one run of the journeys acts on; ``tag`` keeps each run's cases apart."""
    held, late, phone = f"HELD-{tag}", f"LATE-{tag}", f"PHONE-{tag}"
    return [
        # Domestic abuse: every letter is held for a person to read first.
        referral(
            held,
            _day(2),
            flags=["domestic_abuse"],
            referrer={
                "source": "2A",
                "organisation": "Test Primary",
                "name": "Ms Lead",
                "email": f"dsl-{tag.lower()}@school.example",
            },
        ),
        event("worker.allocated", held, _day(2, 11), worker="sw1"),
        # No decision for a fortnight: reminders to the worker, escalations to the managers.
        referral(
            late,
            _day(14),
            child={"name": "Child Late", "dob": "2016-05-01"},
            referrer={"source": "1A"},
            household=[person(email=None)],
        ),
        event("worker.allocated", late, _day(14, 11), worker="sw1"),
        # A GP who left no way to write to them: the worker tells them by phone.
        referral(
            phone,
            _day(3),
            child={"name": "Child Phone", "dob": "2017-02-01"},
            referrer={"source": "3B", "organisation": "Example Surgery", "name": "Dr Example"},
        ),
        event("worker.allocated", phone, _day(3, 11), worker="sw1"),
    ]


def other_team_case() -> list[dict[str, Any]]:
    return [
        referral("OTHER-1", _day(2), team=OTHER_TEAM),
        event("worker.allocated", "OTHER-1", _day(2, 11), worker="sw9"),
    ]


def staff() -> list[Member]:
    return [
        *front_door_staff(),
        Member("tm9", "Terry Other", "tm9@council.example", "team_manager", OTHER_TEAM, "sm1"),
        Member("sw9", "Sue Other", "sw9@council.example", "social_worker", OTHER_TEAM, "tm9"),
    ]


@dataclass
class FrontDoor:
    engine: Engine
    url: str
    smtp: SmtpSink
    tags: list[str] = field(default_factory=list)


def _postgres_schema(base: str) -> tuple[str, str, str]:
    schema = f"b_{uuid.uuid4().hex[:12]}"
    url = make_url(base)
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    scoped = url.update_query_dict({"options": f"-csearch_path={schema}"})
    return scoped.render_as_string(hide_password=False), conninfo, schema


def _redis_db(base: str) -> str:
    """A Redis database of this worker's own, kept out of the process tests' rotation."""
    root = base.rsplit("/", 1)[0] if base.count("/") > 2 else base
    return f"{root}/{15 - xdist_worker()[0]}"


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def serve_front_door(root: Path, postgres_url: str, redis_url: str, tags: list[str]) -> Iterator[FrontDoor]:
    database_url, conninfo, schema = _postgres_schema(postgres_url)
    broker_url = _redis_db(redis_url)
    redis.Redis.from_url(broker_url).flushdb()
    smtp = SmtpSink().start()
    engine = Engine(
        root,
        database_url,
        broker_url=broker_url,
        smtp_url=smtp.url,
        settings={"CASELOOP_PASSWORD_HASHING": "fast"},
    )
    try:
        events = [e for tag in tags for e in journey_cases(tag)] + other_team_case()
        engine.prepare(events, staff())
        rt = build_runtime(Settings(database_url=database_url, password_hashing="fast"))
        try:
            for staff_id in ("sw1", "tm1", "sm1", "sw9"):
                access.add_user(rt, SYSTEM, staff_id, PASSWORD, admin=staff_id == "sm1")
        finally:
            rt.close()
        port = free_port()
        run = engine.start("run", "--port", str(port))
        url = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: _answers(f"{url}/readyz"),
            timeout=STARTUP_SECONDS,
            what="caseloop run to be ready",
            diagnostics=run.log,
        )
        yield FrontDoor(engine, url, smtp, tags)
    finally:
        engine.stop_all()
        smtp.stop()
        redis.Redis.from_url(broker_url).flushdb()
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def service_urls() -> tuple[str | None, str | None]:
    return os.environ.get("CASELOOP_TEST_POSTGRES_URL"), os.environ.get("CASELOOP_TEST_REDIS_URL")
