"""The services under caseloop going away mid-run: Redis restarted empty, PostgreSQL cutting every
connection of the deployment. The Redis test moved here from tests/e2e/test_engine_redis.py."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.e2e.engine import ALL_SENT, ONE_EACH, Engine, overdue_engine
from tests.e2e.services import RedisServer, SmtpSink
from tests.failure import invariants

pytestmark = [pytest.mark.failure, pytest.mark.redis, pytest.mark.postgres]


def test_redis_restarted_mid_run_consumption_resumes_and_pending_work_is_sent_once(
    postgres_schema_url: str,
    private_redis: RedisServer,
    smtp_sink: SmtpSink,
    make_engine: Callable[..., Engine],
) -> None:
    engine = overdue_engine(make_engine, postgres_schema_url, private_redis.url(0), smtp_sink)
    smtp_sink.before_data.arm()  # keep one send in flight while Redis goes away
    worker = engine.start("worker", "--concurrency", "1")
    beat = engine.start("beat")
    engine.wait(smtp_sink.before_data.started.is_set, "a send to be in flight", sink=smtp_sink)
    assert sorted(engine.statuses().values()) == ["queued", "queued", "sending"]

    # Redis goes down and comes back empty: the two queued messages are lost with it.
    private_redis.stop()
    engine.wait(
        lambda: "Connection to broker lost" in worker.log(), "the worker to lose Redis", sink=smtp_sink
    )
    private_redis.start()
    smtp_sink.before_data.released.set()

    sweeps_before = worker.count(r"\bsweep: ")
    engine.wait_for_statuses(ALL_SENT, sink=smtp_sink, timeout=40)
    engine.wait_for_sweeps(worker, 3)
    assert worker.count(r"\bsweep: ") > sweeps_before, "the worker consumed nothing after the restart"
    assert smtp_sink.recipients() == ONE_EACH
    assert worker.alive() and beat.alive()
    invariants.check(engine, smtp_sink)


def _terminate(postgres_url: str, application_name: str) -> int:
    """Cut every connection the deployment holds (and only the deployment's)."""
    conninfo = make_url(postgres_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = %s AND pid <> pg_backend_pid()",
            (application_name,),
        ).fetchall()
    return len(rows)


def test_postgres_connections_terminated_mid_run_the_engine_recovers_and_sends_once(
    postgres_url: str,
    tagged_schema: tuple[str, str],
    redis_db_url: str,
    smtp_sink: SmtpSink,
    make_engine: Callable[..., Engine],
) -> None:
    database_url, application_name = tagged_schema
    engine = overdue_engine(make_engine, database_url, redis_db_url, smtp_sink)
    smtp_sink.before_data.arm()  # one send in flight while its worker's connections are cut
    worker = engine.start("worker", "--concurrency", "2")
    engine.start("beat")
    engine.wait(smtp_sink.before_data.started.is_set, "a send to be in flight", sink=smtp_sink)
    engine.wait_for_sweeps(worker, 1)  # the pool holds connections worth cutting

    assert _terminate(postgres_url, application_name) >= 1, "the worker held no connection to cut"
    smtp_sink.before_data.released.set()  # the send finishes and must record `sent` anew
    engine.wait_for_statuses(ALL_SENT, sink=smtp_sink, timeout=40)

    # Cut again between sweeps: the sweeps go on (each pooled connection is checked before use).
    for _ in range(2):
        _terminate(postgres_url, application_name)
        engine.wait_for_sweeps(worker, 2)
    assert worker.alive()
    assert smtp_sink.recipients() == ONE_EACH
    # Sent once each, whichever way the cut fell. The send in flight usually finishes on a new
    # connection and is recorded, one attempt; on a loaded machine it may outlast its task's time
    # limit while held, or another digest's preparation may be running on the other process when
    # its connection is cut: that attempt ends before anything is handed over, is counted, and is
    # made once more. Never a third time.
    assert all(r["attempts"] <= 2 for r in engine.outbox()), engine.outbox()
    invariants.check(engine, smtp_sink)
