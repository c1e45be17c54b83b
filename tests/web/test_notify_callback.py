"""GOV.UK Notify's delivery receipts posted to a real uvicorn, on SQLite and PostgreSQL.

A letter really goes through Notify's client to the local Notify (tests/support/fake_notify.py);
then receipts arrive as Notify sends them: twice, late, out of order, or about nothing of ours.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from config.wiring import Runtime
from tests.factories import (
    MovableClock,
    audit_of,
    clocks_by_name,
    import_events,
    letter_of,
    letter_runtime,
    referral,
    sweep_and_deliver,
)
from tests.support.fake_notify import FakeNotify
from tests.web.conftest import LiveServer
from workflow.access import NotifyReceipt

NOW = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)  # a Tuesday, in office hours
TEMPLATE = "5a2f1c2e-7d7e-4c1b-9f38-0c6f3b7f4d11"
TOKEN = "notify-callback-token-for-tests-0123456789"
CANARY = "canary.callback@school.example"


@pytest.fixture
def notify() -> Iterator[FakeNotify]:
    with FakeNotify(email_templates=(TEMPLATE,)) as fake:
        yield fake


@pytest.fixture
def runtime(database_url: str, tmp_path: Path, notify: FakeNotify) -> Iterator[Runtime]:
    """Overrides the shared runtime: Notify set up, and the callback token it sends."""
    rt = letter_runtime(
        database_url,
        tmp_path / "var",
        MovableClock(NOW),
        notify_api_key=notify.api_key,
        notify_base_url=notify.base_url,
        notify_email_template_id=TEMPLATE,
        notify_callback_token=TOKEN,
    )
    yield rt
    rt.close()


def sent_acknowledgement(rt: Runtime, notify: FakeNotify) -> tuple[int, str, str]:
    """A school's referral, its acknowledgement emailed through Notify: (outbox id, Notify id, key)."""
    school = {"source": "2A", "organisation": "Test Primary", "name": "Referrer Example", "email": CANARY}
    report = import_events(
        rt, referral("C1", "2026-11-03T08:00:00+00:00", id="r1", referrer=school), now=NOW.isoformat()
    )
    assert report.ok, report.rejected
    ack = letter_of(rt, "C1", "referrer_acknowledgement", "referrer")
    assert sweep_and_deliver(rt, NOW)[ack.id] == "sent"
    [sent] = [n for n in notify.of_type("email") if n.reference == ack.idempotency_key]
    return ack.id, sent.id, ack.idempotency_key


def receipt(notify_id: str, reference: str | None, status: str) -> dict[str, Any]:
    return {
        "id": notify_id,
        "reference": reference,
        "to": CANARY,
        "status": status,
        "created_at": "2026-11-03T10:00:00.000000Z",
        "completed_at": "2026-11-03T10:01:00.000000Z",
        "sent_at": "2026-11-03T10:00:30.000000Z",
        "notification_type": "email",
        "template_id": TEMPLATE,
        "template_version": 1,
    }


def post(http: httpx.Client, body: dict[str, Any], token: str | None = TOKEN) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return http.post("/api/notify/callback", json=body, headers=headers)


def stored(rt: Runtime) -> list[tuple[str, str, bool, int]]:
    with rt.db.reading() as session:
        rows = session.scalars(select(NotifyReceipt).order_by(NotifyReceipt.id))
        return [(r.notify_id, r.status, r.applied, r.attempt) for r in rows]


def failed_letter_tasks(rt: Runtime) -> int:
    view = clocks_by_name(rt, "C1", (NOW + timedelta(hours=3)).isoformat())
    return sum(1 for name in view if name == "failed_letter")


def test_delivered_twice_is_applied_once(live_server: LiveServer, notify: FakeNotify) -> None:
    rt = live_server.runtime
    outbox_id, notify_id, key = sent_acknowledgement(rt, notify)
    with live_server.client() as http:
        first = post(http, receipt(notify_id, key, "delivered"))
        second = post(http, receipt(notify_id, key, "delivered"))
    assert (first.status_code, first.json()) == (200, {"stored": True, "repeated": False})
    assert (second.status_code, second.json()) == (200, {"stored": True, "repeated": True})
    assert stored(rt) == [(notify_id, "delivered", True, 2)]
    message = letter_of(rt, "C1", "referrer_acknowledgement", "referrer")
    assert (message.status, message.payload["delivery_status"]) == ("sent", "delivered")
    assert [a for a, _, _ in audit_of(rt, outbox_id)] == ["sent"]


def test_a_failure_becomes_one_task_and_nothing_after_it_changes_the_message(
    live_server: LiveServer, notify: FakeNotify
) -> None:
    rt = live_server.runtime
    outbox_id, notify_id, key = sent_acknowledgement(rt, notify)
    with live_server.client() as http:
        assert post(http, receipt(notify_id, key, "permanent-failure")).status_code == 200
        assert post(http, receipt(notify_id, key, "permanent-failure")).json()["repeated"] is True
        late = post(http, receipt(notify_id, key, "delivered"))  # out of order: a final status stays
    assert late.status_code == 200 and late.json()["repeated"] is False
    message = letter_of(rt, "C1", "referrer_acknowledgement", "referrer")
    assert (message.status, message.payload["delivery_status"]) == ("failed", "permanent-failure")
    assert [a for a, _, _ in audit_of(rt, outbox_id)] == ["sent", "failed"]
    assert failed_letter_tasks(rt) == 1
    assert stored(rt) == [(notify_id, "permanent-failure", True, 2), (notify_id, "delivered", False, 1)]


def test_a_late_sending_after_delivered_changes_nothing(live_server: LiveServer, notify: FakeNotify) -> None:
    rt = live_server.runtime
    _, notify_id, key = sent_acknowledgement(rt, notify)
    with live_server.client() as http:
        assert post(http, receipt(notify_id, key, "delivered")).status_code == 200
        assert post(http, receipt(notify_id, key, "sending")).status_code == 200
    message = letter_of(rt, "C1", "referrer_acknowledgement", "referrer")
    assert (message.status, message.payload["delivery_status"]) == ("sent", "delivered")
    assert stored(rt) == [(notify_id, "delivered", True, 1), (notify_id, "sending", False, 1)]


def test_a_receipt_for_no_message_of_ours_is_kept_and_applied_to_nothing(
    live_server: LiveServer, notify: FakeNotify
) -> None:
    rt = live_server.runtime
    sent_acknowledgement(rt, notify)
    with live_server.client() as http:
        answer = post(http, receipt("8f1a3c9e-0000-4000-8000-000000000001", "letter:nobody", "delivered"))
    assert (answer.status_code, answer.json()["repeated"]) == (200, False)
    assert stored(rt) == [("8f1a3c9e-0000-4000-8000-000000000001", "delivered", False, 1)]
    message = letter_of(rt, "C1", "referrer_acknowledgement", "referrer")
    assert "delivery_status" not in message.payload
    with rt.db.reading() as session:
        [row] = session.scalars(select(NotifyReceipt))
        assert row.raw["to"] == CANARY and row.raw["template_version"] == 1  # kept as it came


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-the-token", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}"],
)
def test_without_the_callback_token_nothing_is_stored(
    live_server: LiveServer, notify: FakeNotify, authorization: str | None
) -> None:
    rt = live_server.runtime
    _, notify_id, key = sent_acknowledgement(rt, notify)
    headers = {"Authorization": authorization} if authorization else {}
    with live_server.client() as http:
        answer = http.post(
            "/api/notify/callback", json=receipt(notify_id, key, "permanent-failure"), headers=headers
        )
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert stored(rt) == []
    assert letter_of(rt, "C1", "referrer_acknowledgement", "referrer").status == "sent"


def test_without_a_configured_token_callbacks_are_refused_with_503(live_server: LiveServer) -> None:
    live_server.runtime.settings.notify_callback_token = None  # read at each request
    with live_server.client() as http:
        answer = post(http, receipt("8f1a3c9e-0000-4000-8000-000000000002", "k", "delivered"), "anything")
    assert answer.status_code == 503
    assert "no callback token" in answer.json()["detail"]
    assert stored(live_server.runtime) == []
