"""The embedded default: no broker URL, SQLite, message files under ``$CASELOOP_VAR_DIR/broker``.

``caseloop run`` (worker and beat in one process) must work on a bare machine, and the embedded
broker, which may lose a message on a crash, must be covered by the sweeper re-dispatching any
message claimed but not finished.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from config.celery import make_celery
from config.queues import DELIVER_TASK, DELIVERY_QUEUE
from config.settings import Settings
from config.wiring import build_runtime
from services.actors import SYSTEM
from services.sweep import sweep
from tests.e2e.engine import ALL_SENT, ONE_EACH, Engine, overdue_referral
from tests.e2e.services import SmtpSink

pytestmark = pytest.mark.slow


def _sqliteoverdue_engine(make_engine: Callable[..., Engine], tmp_path: Path, sink: SmtpSink) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'caseloop.db'}", smtp_url=sink.url)
    assert "CASELOOP_BROKER_URL" not in engine.env()
    engine.prepare(overdue_referral("C1", "sw1"))
    return engine


def test_caseloop_run_on_the_embedded_default_sends_each_digest_once(
    tmp_path: Path, smtp_sink: SmtpSink, make_engine: Callable[..., Engine]
) -> None:
    engine = _sqliteoverdue_engine(make_engine, tmp_path, smtp_sink)
    run = engine.start("run")

    engine.wait_for_statuses(ALL_SENT, sink=smtp_sink)
    engine.wait_for_sweeps(run, 2)
    assert smtp_sink.recipients() == ONE_EACH
    assert "transport:   filesystem://" in run.log()
    assert [r["attempts"] for r in engine.outbox()] == [1, 1, 1]


def test_a_message_the_embedded_broker_lost_is_redispatched_and_sent_once(
    tmp_path: Path, smtp_sink: SmtpSink, make_engine: Callable[..., Engine]
) -> None:
    engine = _sqliteoverdue_engine(make_engine, tmp_path, smtp_sink)
    settings = Settings(
        database_url=engine.database_url,
        policy_file=engine.policy_file,
        var_dir=engine.var_dir,
        smtp_url=smtp_sink.url,
        sweep_interval_seconds=1,
        task_time_limit=4,
        sending_timeout=6,
        redispatch_after=3,
    )
    # What the beat's sweeper does: claim the due messages (dispatched_at is set) and queue one
    # deliver task for each on the embedded broker...
    rt = build_runtime(settings)
    try:
        report = sweep(rt, SYSTEM, rt.clock())
    finally:
        rt.close()
    assert len(report.to_deliver) == 3
    app = make_celery(settings)
    try:
        for outbox_id in report.to_deliver:
            app.send_task(DELIVER_TASK, args=[outbox_id])
    finally:
        app.close()
    assert all(r["dispatched_at"] is not None and r["status"] == "queued" for r in engine.outbox())

    # ...and then the broker loses them, as it may on a crash.
    queue = engine.var_dir / "broker" / "queue"
    lost = sorted(queue.glob(f"*.{DELIVERY_QUEUE}.msg"))
    assert len(lost) == 3, sorted(p.name for p in queue.iterdir())
    carried = []
    for path in lost:
        message = json.loads(path.read_text())
        args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
        carried.append((args, kwargs))
        path.unlink()
    assert sorted(carried) == [([i], {}) for i in sorted(report.to_deliver)]  # ids only

    run = engine.start("run")
    engine.wait_for_statuses(ALL_SENT, sink=smtp_sink, timeout=40)
    engine.wait_for_sweeps(run, 3)
    assert smtp_sink.recipients() == ONE_EACH
    assert "messages to deliver 3" in run.log()  # the sweeper re-dispatched all three
