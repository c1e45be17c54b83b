"""Workers that die: ``kill -9`` in the middle of a send and with claims in hand, and a poison
message that kills every worker that prepares it.

Each test runs ``caseloop worker`` and ``caseloop beat`` on a fresh PostgreSQL schema and a Redis
database of its own, with one referral whose decision clock breached days ago: the first sweep
plans one digest each for the social worker, the team manager and the service manager. Moved here
from tests/e2e/test_engine_redis.py (the two kill -9 tests), each now ending with the shared
invariant check.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.engine import ALL_SENT, ONE_EACH, Engine, overdue_engine, recipient_id
from tests.e2e.services import SmtpSink
from tests.failure import invariants

pytestmark = [pytest.mark.failure, pytest.mark.redis, pytest.mark.postgres]

POISON_PLUGIN = Path(__file__).with_name("poison")


def test_kill_9_mid_send_before_handover_with_claims_in_hand_then_restart_sends_once(
    postgres_schema_url: str, redis_db_url: str, smtp_sink: SmtpSink, make_engine: Callable[..., Engine]
) -> None:
    engine = overdue_engine(make_engine, postgres_schema_url, redis_db_url, smtp_sink)
    smtp_sink.before_data.arm()  # the first send waits for the 354, holding nothing handed over
    doomed = engine.start("worker", "--concurrency", "1")
    engine.start("beat")

    engine.wait(smtp_sink.before_data.started.is_set, "a send to stall before the 354", sink=smtp_sink)
    stalled = recipient_id(smtp_sink.before_data.held[0])
    row = engine.outbox_row(stalled)
    assert (row["status"], row["handed_over_at"]) == ("sending", None), row
    # Mid-claim too: the other two digests are claimed (dispatched, their task in the broker or in
    # the dying worker's prefetch) and not begun.
    claimed = [r for r in engine.outbox() if r["status"] == "queued" and r["dispatched_at"] is not None]
    assert len(claimed) == 2, engine.outbox()

    doomed.kill9()
    smtp_sink.before_data.released.set()
    worker = engine.start("worker")

    engine.wait_for_statuses(ALL_SENT, sink=smtp_sink, timeout=40)
    engine.wait_for_sweeps(worker, 3)
    assert smtp_sink.recipients() == ONE_EACH
    assert engine.outbox_row(stalled)["attempts"] == 2
    assert all(engine.outbox_row(r["recipient"])["attempts"] == 1 for r in claimed)
    # The new worker's sweeper settled the stale send (requeued it: nothing had been handed over).
    assert "stale sends settled 1," in worker.log()
    invariants.check(engine, smtp_sink)


def test_kill_9_mid_send_after_the_final_dot_leaves_unknown_and_does_not_resend(
    postgres_schema_url: str, redis_db_url: str, smtp_sink: SmtpSink, make_engine: Callable[..., Engine]
) -> None:
    engine = overdue_engine(make_engine, postgres_schema_url, redis_db_url, smtp_sink)
    smtp_sink.after_dot.arm()  # the server has the whole message but holds back its 250
    doomed = engine.start("worker", "--concurrency", "1")
    engine.start("beat")

    engine.wait(smtp_sink.after_dot.started.is_set, "a send to stall after the final dot", sink=smtp_sink)
    stalled = recipient_id(smtp_sink.after_dot.held[0])
    row = engine.outbox_row(stalled)
    assert row["status"] == "sending" and row["handed_over_at"] is not None, row

    doomed.kill9()
    smtp_sink.after_dot.released.set()
    worker = engine.start("worker")

    others = {k: v for k, v in ALL_SENT.items() if k != stalled}
    engine.wait_for_statuses({**others, stalled: "unknown"}, sink=smtp_sink, timeout=40)
    engine.wait_for_sweeps(worker, 4)  # reconciled, and then left alone
    assert engine.statuses() == {**others, stalled: "unknown"}
    assert smtp_sink.recipients() == ONE_EACH
    assert engine.outbox_row(stalled)["attempts"] == 1

    unknown = engine.cli_json("outbox", "list", "--status", "unknown")
    assert [(r["id"], r["recipient"], r["status"]) for r in unknown] == [(row["id"], stalled, "unknown")]
    assert "check before resending" in unknown[0]["last_error"]
    listed = engine.cli("outbox", "list", "--status", "unknown").stdout
    assert stalled in listed and "unknown" in listed
    invariants.check(engine, smtp_sink)


def test_a_poison_message_that_kills_its_worker_is_failed_after_a_bounded_number_of_tries(
    postgres_schema_url: str, redis_db_url: str, smtp_sink: SmtpSink, make_engine: Callable[..., Engine]
) -> None:
    # The worker loads tests/failure/poison/sitecustomize.py, which makes rendering the team
    # manager's digest SIGKILL the process rendering it, as a crash in a native library would:
    # before any attempt has begun, so no attempt is ever counted for it. Celery's prefork pool
    # replaces the child and the broker redelivers the task (acks late, rejected on worker loss).
    engine = overdue_engine(
        make_engine,
        postgres_schema_url,
        redis_db_url,
        smtp_sink,
        settings={"CASELOOP_MAX_ATTEMPTS": "3", "CASELOOP_REDISPATCH_AFTER": "2"},
    )
    kills = engine.root / "poison.log"
    worker = engine.start(
        "worker",
        "--concurrency",
        "2",
        PYTHONPATH=str(POISON_PLUGIN),
        CASELOOP_FAILURE_POISON="tm1",
        CASELOOP_FAILURE_POISON_LOG=str(kills),
    )

    def killed() -> int:
        return len(kills.read_text(encoding="utf-8").splitlines()) if kills.exists() else 0

    engine.start("beat")

    engine.wait_for_statuses({"sw1": "sent", "tm1": "failed", "sm1": "sent"}, sink=smtp_sink, timeout=60)
    poison = engine.outbox_row("tm1")
    assert poison["attempts"] == 0, poison
    assert "stopped 3 times while preparing it" in str(poison["last_error"])
    assert killed() == 3, worker.log()
    # Parked: later sweeps leave it alone, and the worker carries on with everyone else.
    engine.wait_for_sweeps(worker, 3)
    assert killed() == 3
    assert engine.outbox_row("tm1")["status"] == "failed" and worker.alive()
    assert smtp_sink.recipients() == Counter({"sw1@council.example": 1, "sm1@council.example": 1})
    failed = engine.cli_json("outbox", "list", "--status", "failed")
    assert [r["recipient"] for r in failed] == ["tm1"]
    invariants.check(engine, smtp_sink)
