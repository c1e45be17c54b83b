"""Edges of the engine's guarantees that the happy paths do not reach.

- a beat on Redis, started where its state folder does not exist yet (a fresh server);
- a send slower than ``task_time_limit``: the settings promise that ``sending_timeout`` outlasts
  any live send because it exceeds the task time limit, so a slow send must never be reclaimed
  and sent a second time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.engine import STAFF_ADDRESSES, Engine, overdue_referral
from tests.e2e.services import SmtpSink

pytestmark = [pytest.mark.slow, pytest.mark.redis]


@pytest.mark.parametrize("command", ["beat", "run"])
def test_the_beat_on_redis_starts_where_its_var_dir_does_not_exist_yet(
    command: str, tmp_path: Path, redis_db_url: str, make_engine: Callable[..., Engine]
) -> None:
    # A fresh server: CASELOOP_VAR_DIR names a folder nobody has created. With the embedded broker
    # caseloop creates it (for the broker's files); on Redis only the beat's schedule lives there.
    engine = make_engine(f"sqlite:///{tmp_path / 'caseloop.db'}", broker_url=redis_db_url)
    engine.cli("db", "upgrade")
    fresh = engine.root / "fresh" / "var"
    proc = engine.start(command, CASELOOP_VAR_DIR=str(fresh))

    def beat_failed() -> bool:
        return not proc.alive() or "CRITICAL/" in proc.log() or "ERROR/Beat] Process Beat" in proc.log()

    engine.wait(
        lambda: proc.count("Sending due task sweep") >= 1 or beat_failed(),
        f"{command} to queue a sweep (or fail)",
    )
    failure = next(
        (line for line in proc.log().splitlines() if "CRITICAL/" in line or "ERROR/Beat" in line), ""
    )
    assert not beat_failed(), f"caseloop {command}: the beat died at start-up: {failure}"
    assert proc.count("Sending due task sweep") >= 1


@pytest.mark.postgres
def test_a_send_slower_than_the_task_time_limit_is_not_sent_twice(
    postgres_schema_url: str, redis_db_url: str, smtp_sink: SmtpSink, make_engine: Callable[..., Engine]
) -> None:
    # A configuration the settings accept: sending_timeout (3) > task_time_limit (2). The SMTP
    # server takes 6 seconds to answer DATA, well inside the SMTP timeout (10).
    engine = make_engine(
        postgres_schema_url,
        broker_url=redis_db_url,
        smtp_url=smtp_sink.url,
        settings={
            "CASELOOP_TASK_TIME_LIMIT": "2",
            "CASELOOP_SENDING_TIMEOUT": "3",
            "CASELOOP_SMTP_TIMEOUT": "10",
            "CASELOOP_REDISPATCH_AFTER": "30",
        },
    )
    engine.prepare(overdue_referral("C1", "sw1"))
    smtp_sink.before_data.arm(count=1, seconds=6)
    worker = engine.start("worker", "--concurrency", "2")
    engine.start("beat")

    engine.wait(smtp_sink.before_data.started.is_set, "the slow send to begin", sink=smtp_sink)
    engine.wait_for_statuses({"sw1": "sent", "tm1": "sent", "sm1": "sent"}, sink=smtp_sink, timeout=30)
    # Past the slow server's 6 seconds, plus a few sweeps, so a second copy would have arrived.
    slow = smtp_sink.before_data.held[0]
    engine.wait(lambda: smtp_sink.recipients()[slow] >= 1, "the slow send to finish", sink=smtp_sink)
    engine.wait_for_sweeps(worker, 3)
    assert smtp_sink.recipients() == Counter(dict.fromkeys(STAFF_ADDRESSES, 1)), engine.diagnostics(smtp_sink)
