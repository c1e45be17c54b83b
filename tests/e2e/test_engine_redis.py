"""The engine on Redis and PostgreSQL: real workers and beats, a real SMTP server, real failures.

The failure scenarios (kill -9 mid-send, two beats, Redis restarted) are in tests/failure/.

Each test starts ``caseloop worker`` and ``caseloop beat`` as separate processes against a fresh
PostgreSQL schema and a Redis database of its own, with one referral whose decision clock breached
days ago: the first sweep plans one digest each for the social worker, the team manager and the
service manager, due at once. The referral owes no letter (its referrer left no contact details and
no school is recorded), so those three digests are the whole outbox. What is asserted is what the
SMTP server received and what the outbox says.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from config.queues import QUEUES
from tests.e2e.engine import ALL_SENT, ONE_EACH, Engine, overdue_engine
from tests.e2e.services import SmtpSink

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.postgres]


def test_worker_and_beat_send_one_digest_per_person_by_smtp(
    postgres_schema_url: str, redis_db_url: str, smtp_sink: SmtpSink, make_engine: Callable[..., Engine]
) -> None:
    engine = overdue_engine(make_engine, postgres_schema_url, redis_db_url, smtp_sink)
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
