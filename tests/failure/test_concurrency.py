"""Processes that run at once when they should not, or in numbers: two beats, four workers.

The two-beat test moved here from tests/e2e/test_engine_redis.py and now owes a letter too.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

import pytest

from tests.e2e.engine import STAFF_ADDRESSES, Engine, Member, front_door_staff, overdue_referral
from tests.e2e.services import SmtpSink
from tests.failure import invariants

pytestmark = [pytest.mark.failure, pytest.mark.redis, pytest.mark.postgres]

REFERRER = "referrer@school.example"


def test_two_beats_send_each_reminder_and_each_letter_once(
    postgres_schema_url: str, redis_db_url: str, smtp_sink: SmtpSink, make_engine: Callable[..., Engine]
) -> None:
    engine = make_engine(postgres_schema_url, broker_url=redis_db_url, smtp_url=smtp_sink.url)
    referrer = {"source": "2A", "organisation": "Test Primary", "name": "Ms Lead", "email": REFERRER}
    engine.prepare(overdue_referral("C1", "sw1", referrer=referrer))
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

    def all_sent() -> bool:
        rows = engine.outbox()
        return len(rows) == 4 and all(r["status"] == "sent" for r in rows)

    engine.wait(all_sent, "three digests and the referrer's letter sent", sink=smtp_sink)
    engine.wait_for_sweeps(worker, 4)
    assert smtp_sink.recipients() == Counter({**dict.fromkeys(STAFF_ADDRESSES, 1), REFERRER: 1})
    letters = [r for r in engine.outbox() if r["duty"] is not None]
    assert [(r["duty"], r["address"], r["attempts"]) for r in letters] == [
        ("referrer_acknowledgement", REFERRER, 1)
    ]
    # Six: the decision clock's and the acknowledgement clock's breaches, each with two escalations,
    # planned once for the day and carried by the three digests, one a person.
    assert engine.scalar("SELECT count(*) FROM reminder_items") == 6
    assert engine.scalar("SELECT count(*) FROM reminder_days") == 1
    assert all(b.alive() for b in beats)
    invariants.check(engine, smtp_sink)


SOCIAL_WORKERS = 12


def test_four_workers_claim_disjoint_messages_and_send_each_once(
    postgres_schema_url: str, redis_db_url: str, smtp_sink: SmtpSink, make_engine: Callable[..., Engine]
) -> None:
    staff = [m for m in front_door_staff() if m.role != "social_worker"] + [
        Member(f"sw{n}", f"Worker {n}", f"sw{n}@council.example", "social_worker", "front-door", "tm1")
        for n in range(1, SOCIAL_WORKERS + 1)
    ]
    engine = make_engine(
        postgres_schema_url,
        broker_url=redis_db_url,
        smtp_url=smtp_sink.url,
        settings={
            "CASELOOP_DELIVERY_WORKERS": "4",
            "CASELOOP_WORKER_CONCURRENCY": "1",
            # What is tested is who claims what, not time limits: with nine processes on a small
            # machine a send can outlast the suite's usual four seconds, and a send cut short
            # after its hand-over is rightly `unknown` (test_worker_deaths.py covers that).
            "CASELOOP_TASK_TIME_LIMIT": "30",
            "CASELOOP_SENDING_TIMEOUT": "40",
        },
    )
    engine.prepare(
        [e for n in range(1, SOCIAL_WORKERS + 1) for e in overdue_referral(f"C{n}", f"sw{n}")], staff=staff
    )
    smtp_sink.after_dot.arm(count=10_000, seconds=0.1)  # slow enough that all four share the work
    workers = [engine.start("worker") for _ in range(4)]  # every one also runs sweeps and refills
    engine.start("beat")

    engine.wait_for_statuses({m.id: "sent" for m in staff}, sink=smtp_sink, timeout=90)

    # A few more sweeps, by whichever workers take them: time for a duplicate to show itself.
    def sweeps() -> int:
        return sum(w.count(r"\bsweep: ") for w in workers)

    target = sweeps() + 3
    engine.wait(lambda: sweeps() >= target, "three more sweeps", sink=smtp_sink)
    assert smtp_sink.recipients() == Counter({f"{m.id}@council.example": 1 for m in staff})
    assert all(r["attempts"] == 1 for r in engine.outbox())
    # Disjoint: each message was sent by exactly one worker's task, whatever the others claimed.
    sent_by = Counter(
        int(outbox_id)
        for worker in workers
        for outbox_id in re.findall(r"deliver outbox (\d+): sent\b", worker.log())
    )
    assert sent_by == Counter({r["id"]: 1 for r in engine.outbox()})
    busy = [w.name for w in workers if re.search(r"deliver outbox \d+: sent\b", w.log())]
    assert len(busy) >= 2, f"only {busy} delivered: the test did not make workers compete"
    invariants.check(engine, smtp_sink)
