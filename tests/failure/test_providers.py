"""Providers that fail: an SMTP server down for longer than the retry window, and GOV.UK Notify
answering 400, 429 and 500 (the fake Notify HTTP API, behind Notify's real client).

Letters here are referrer acknowledgements, owed at once on a referral received today (no
reminder is due yet); the referral records no school and a household with no address for email,
so the acknowledgement is the only message each case owes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.e2e.engine import Engine, overdue_referral
from tests.e2e.services import SmtpSink
from tests.factories import jsonl, referral
from tests.failure import invariants
from tests.support.fake_notify import FakeNotify

pytestmark = [pytest.mark.failure, pytest.mark.redis, pytest.mark.postgres]

TEMPLATE = "5a2f1c2e-7d7e-4c1b-9f38-0c6f3b7f4d11"


def _acknowledged(case: str, email: str) -> dict[str, Any]:
    """A referral received now whose one letter is the referrer's acknowledgement, by email."""
    return referral(
        case,
        datetime.now(UTC).replace(microsecond=0).isoformat(),
        child={"name": "Child Example", "dob": "2016-05-01"},
        referrer={"source": "2A", "organisation": "Test Primary", "name": "Ms Lead", "email": email},
    )


def _import(engine: Engine, name: str, *events: dict[str, Any]) -> None:
    path = engine.root / f"{name}.jsonl"
    path.write_text("".join(jsonl(*events)), encoding="utf-8")
    assert "rejected 0" in engine.cli("events", "import", str(path)).stdout


def _row_to(engine: Engine, address: str) -> dict[str, Any] | None:
    return next((r for r in engine.outbox() if r["address"] == address), None)


def _settled(engine: Engine, address: str, status: str) -> Callable[[], bool]:
    def probe() -> bool:
        row = _row_to(engine, address)
        return row is not None and row["status"] == status

    return probe


def test_smtp_down_past_the_retry_window_fails_visibly_then_new_messages_go_when_it_is_back(
    postgres_schema_url: str, redis_db_url: str, make_engine: Callable[..., Engine]
) -> None:
    sink = SmtpSink()  # its port is chosen, but nothing listens there yet: SMTP is down
    engine = make_engine(
        postgres_schema_url,
        broker_url=redis_db_url,
        smtp_url=sink.url,
        settings={"CASELOOP_MAX_ATTEMPTS": "3", "CASELOOP_RETRY_BASE_SECONDS": "0.5"},
    )
    engine.prepare(overdue_referral("C1", "sw1"))  # three digests, due at once
    worker = engine.start("worker")
    engine.start("beat")

    engine.wait_for_statuses({"sw1": "failed", "tm1": "failed", "sm1": "failed"}, timeout=60)
    for row in engine.outbox():
        assert row["attempts"] == 3 and row["sent_at"] is None, row
        assert "Connection" in (row["last_error"] or "") or "refused" in (row["last_error"] or ""), row
    failed = engine.cli_json("outbox", "list", "--status", "failed")
    assert sorted(r["recipient"] for r in failed) == ["sm1", "sw1", "tm1"]

    sink.start()  # SMTP is back: what is owed from now on goes; what failed stays failed, visibly
    try:
        _import(engine, "later", _acknowledged("C2", "ref2@school.example"))
        engine.wait(_settled(engine, "ref2@school.example", "sent"), "the new letter to go", sink=sink)
        engine.wait_for_sweeps(worker, 3)
        assert sink.recipients() == Counter({"ref2@school.example": 1})
        assert sorted(r["status"] for r in engine.outbox()) == ["failed", "failed", "failed", "sent"]
        invariants.check(engine, sink)
    finally:
        sink.stop()


def _wait_for_status_read(engine: Engine, notify: FakeNotify, address: str) -> None:
    row = _row_to(engine, address)
    assert row is not None
    reference = engine.scalar(f"SELECT provider_ref FROM outbox WHERE id = {int(row['id'])}")
    engine.wait(
        lambda: ("GET", f"/v2/notifications/{reference}", 200) in notify.requests,
        f"the sweep to ask Notify about outbox {row['id']}",
    )


@pytest.fixture
def notify() -> Iterator[FakeNotify]:
    with FakeNotify(email_templates=(TEMPLATE,)) as fake:
        yield fake


def test_notify_400_fails_at_once_429_and_500_are_retried_and_each_letter_goes_once(
    postgres_schema_url: str,
    redis_db_url: str,
    smtp_sink: SmtpSink,
    notify: FakeNotify,
    make_engine: Callable[..., Engine],
) -> None:
    engine = make_engine(
        postgres_schema_url,
        broker_url=redis_db_url,
        smtp_url=smtp_sink.url,
        settings={
            "CASELOOP_NOTIFY_API_KEY": notify.api_key,
            "CASELOOP_NOTIFY_EMAIL_TEMPLATE_ID": TEMPLATE,
            "CASELOOP_NOTIFY_BASE_URL": notify.base_url,
        },
    )
    engine.prepare([])
    worker = engine.start("worker")
    engine.start("beat")

    # One letter at a time, so each armed answer meets the send it is meant for.
    notify.fail_next(400)
    _import(engine, "refused", _acknowledged("C1", "refused@school.example"))
    engine.wait(_settled(engine, "refused@school.example", "failed"), "the 400 to fail the letter")
    refused = _row_to(engine, "refused@school.example")
    assert refused is not None and refused["attempts"] == 1 and "400" in refused["last_error"], refused

    notify.fail_next(429)
    _import(engine, "limited", _acknowledged("C2", "limited@school.example"))
    engine.wait(_settled(engine, "limited@school.example", "sent"), "the 429'd letter to go on a retry")

    # The sweep soon asks Notify how a sent letter fared (a GET); wait for that, so the next armed
    # answer meets the next send and not this question.
    _wait_for_status_read(engine, notify, "limited@school.example")
    notify.fail_next(500)
    _import(engine, "broken", _acknowledged("C3", "broken@school.example"))
    engine.wait(_settled(engine, "broken@school.example", "sent"), "the 500'd letter to go on a retry")

    _wait_for_status_read(engine, notify, "broken@school.example")
    engine.wait_for_sweeps(worker, 3)  # time for a retry of the refused letter to show itself
    attempts = {r["address"]: (r["status"], r["attempts"]) for r in engine.outbox() if r["duty"]}
    assert attempts == {
        "refused@school.example": ("failed", 1),
        "limited@school.example": ("sent", 2),
        "broken@school.example": ("sent", 2),
    }, notify.requests
    posts = [status for method, _path, status in notify.requests if method == "POST"]
    assert posts == [400, 429, 201, 500, 201], notify.requests
    # Notify holds each letter that went once, and the refused one not at all.
    addresses = Counter(n.email_address for n in notify.of_type("email"))
    assert addresses == Counter({"limited@school.example": 1, "broken@school.example": 1})
    invariants.check(engine, smtp_sink)
