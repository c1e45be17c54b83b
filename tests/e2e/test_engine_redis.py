"""The engine on Redis and PostgreSQL: real workers and beats, a real SMTP server, real failures.

Each test starts ``caseloop worker`` and ``caseloop beat`` as separate processes against a fresh
PostgreSQL schema and a Redis database of its own, with one referral whose decision clock breached
days ago: the first sweep plans one digest each for the social worker, the team manager and the
service manager, due at once. The referral owes no letter (its referrer left no contact details and
no school is recorded), so those three digests are the whole outbox. What is asserted is what the
SMTP server received and what the outbox says.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from config.queues import QUEUES
from tests.e2e.engine import STAFF_ADDRESSES, Engine, overdue_referral
from tests.e2e.services import RedisServer, SmtpSink

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.postgres]

ALL_SENT = {"sw1": "sent", "tm1": "sent", "sm1": "sent"}
ONE_EACH = Counter(dict.fromkeys(STAFF_ADDRESSES, 1))


def _engine(make_engine: Callable[..., Engine], db: str, broker: str, sink: SmtpSink) -> Engine:
    engine = make_engine(db, broker_url=broker, smtp_url=sink.url)
    engine.prepare(overdue_referral("C1", "sw1"))
    return engine


def _row(engine: Engine, recipient: str) -> dict[str, object]:
    return next(r for r in engine.outbox() if r["recipient"] == recipient)


def _recipient_id(address: str) -> str:
    return address.split("@", 1)[0]


def test_worker_and_beat_send_one_digest_per_person_by_smtp(
    postgres_schema_url: str, redis_db_url: str, smtp_sink: SmtpSink, make_engine: Callable[..., Engine]
) -> None:
    engine = _engine(make_engine, postgres_schema_url, redis_db_url, smtp_sink)
    worker = engine.start("worker")
    engine.start("beat")

    engine.wait_for_statuses(ALL_SENT, sink=smtp_sink)
    engine.wait_for_sweeps(worker, 3)  # time for any duplicate to show itself

    assert smtp_sink.recipients() == ONE_EACH
    for row in engine.outbox():
        assert (row["status"], row["attempts"], row["sent_at"] is not None) == ("sent", 1, True), row
    for message in smtp_sink.received():
        assert message.mail_from == "caseloop@council.example"
        assert "Child Example" not in message.subject
        assert "https://caseloop.council.example/cases/C1" in message.text
    # Three: the decision clock's breach and two escalations. The referrer-acknowledgement duty had
    # nobody to tell, so its clock was cancelled on receipt and is never reminded.
    assert engine.scalar("SELECT count(*) FROM reminder_items") == 3
    assert engine.scalar("SELECT status FROM clocks WHERE name = 'referrer_acknowledgement'") == "cancelled"
    # The worker's banner lists every queue the code sends to.
    banner = worker.log()
    for queue in QUEUES:
        assert f".> {queue} " in banner


def test_kill_9_before_handover_then_restart_sends_once(
    postgres_schema_url: str, redis_db_url: str, smtp_sink: SmtpSink, make_engine: Callable[..., Engine]
) -> None:
    engine = _engine(make_engine, postgres_schema_url, redis_db_url, smtp_sink)
    smtp_sink.before_data.arm()  # the first send waits for the 354, holding nothing handed over
    doomed = engine.start("worker", "--concurrency", "1")
    engine.start("beat")

    engine.wait(smtp_sink.before_data.started.is_set, "a send to stall before the 354", sink=smtp_sink)
    stalled = _recipient_id(smtp_sink.before_data.held[0])
    row = _row(engine, stalled)
    assert (row["status"], row["handed_over_at"]) == ("sending", None), row

    doomed.kill9()
    smtp_sink.before_data.released.set()
    worker = engine.start("worker")

    engine.wait_for_statuses(ALL_SENT, sink=smtp_sink, timeout=40)
    engine.wait_for_sweeps(worker, 3)
    assert smtp_sink.recipients() == ONE_EACH
    assert _row(engine, stalled)["attempts"] == 2
    # The new worker's sweeper settled the stale send (requeued it: nothing had been handed over).
    assert "stale sends settled 1," in worker.log()


def test_kill_9_after_the_final_dot_leaves_unknown_and_does_not_resend(
    postgres_schema_url: str, redis_db_url: str, smtp_sink: SmtpSink, make_engine: Callable[..., Engine]
) -> None:
    engine = _engine(make_engine, postgres_schema_url, redis_db_url, smtp_sink)
    smtp_sink.after_dot.arm()  # the server has the whole message but holds back its 250
    doomed = engine.start("worker", "--concurrency", "1")
    engine.start("beat")

    engine.wait(smtp_sink.after_dot.started.is_set, "a send to stall after the final dot", sink=smtp_sink)
    stalled = _recipient_id(smtp_sink.after_dot.held[0])
    row = _row(engine, stalled)
    assert row["status"] == "sending" and row["handed_over_at"] is not None, row

    doomed.kill9()
    smtp_sink.after_dot.released.set()
    worker = engine.start("worker")

    others = {k: v for k, v in ALL_SENT.items() if k != stalled}
    engine.wait_for_statuses({**others, stalled: "unknown"}, sink=smtp_sink, timeout=40)
    engine.wait_for_sweeps(worker, 4)  # reconciled, and then left alone
    assert engine.statuses() == {**others, stalled: "unknown"}
    assert smtp_sink.recipients() == ONE_EACH
    assert _row(engine, stalled)["attempts"] == 1

    unknown = engine.cli_json("outbox", "list", "--status", "unknown")
    assert [(r["id"], r["recipient"], r["status"]) for r in unknown] == [(row["id"], stalled, "unknown")]
    assert "check before resending" in unknown[0]["last_error"]
    listed = engine.cli("outbox", "list", "--status", "unknown").stdout
    assert stalled in listed and "unknown" in listed


def test_two_beats_send_each_digest_once(
    postgres_schema_url: str, redis_db_url: str, smtp_sink: SmtpSink, make_engine: Callable[..., Engine]
) -> None:
    engine = _engine(make_engine, postgres_schema_url, redis_db_url, smtp_sink)
    # Two beats, each with its own schedule file, as on two machines. Both queue sweeps before a
    # worker exists, so the worker starts with several sweeps waiting and runs them at once.
    beats = []
    for n in (1, 2):
        (engine.root / f"var-beat{n}").mkdir()
        beats.append(engine.start("beat", CASELOOP_VAR_DIR=str(engine.root / f"var-beat{n}")))
    engine.wait(
        lambda: all(b.count("Sending due task sweep") >= 2 for b in beats), "both beats to queue sweeps"
    )
    worker = engine.start("worker", "--concurrency", "4")

    engine.wait_for_statuses(ALL_SENT, sink=smtp_sink)
    engine.wait_for_sweeps(worker, 4)
    assert smtp_sink.recipients() == ONE_EACH
    assert len(engine.outbox()) == 3
    # Three: the decision clock's breach and two escalations (no letter duty's clock is running).
    assert engine.scalar("SELECT count(*) FROM reminder_items") == 3
    assert engine.scalar("SELECT count(*) FROM reminder_days") == 1
    assert all(b.alive() for b in beats)


def test_redis_restarted_mid_run_consumption_resumes_and_pending_work_is_sent_once(
    postgres_schema_url: str,
    private_redis: RedisServer,
    smtp_sink: SmtpSink,
    make_engine: Callable[..., Engine],
) -> None:
    engine = _engine(make_engine, postgres_schema_url, private_redis.url(0), smtp_sink)
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
