"""A provider that stalls on status reads holds up nothing else (on SQLite and PostgreSQL).

GOV.UK Notify is asked how each sent message fared by a task of its own, outside any transaction
(messaging/status_reads.py). Here the local Notify stalls every status read (a GET of one
notification) for 30 seconds, and while a read is stuck in it an event import and a second sweep
run to the end. The stall is then released and the read records what Notify said.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from config.wiring import Runtime
from services import sweep as sweeping
from services.actors import SYSTEM
from tests.factories import (
    MovableClock,
    case_view,
    event,
    import_events,
    letter_runtime,
    letters_of,
    person,
    referral,
    sweep_and_deliver,
)
from tests.support.fake_notify import FakeNotify

NOW = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)  # Tuesday, office hours
LATER = NOW + timedelta(hours=1)  # the sent letters' statuses are due to be read
TEMPLATE = "5a2f1c2e-7d7e-4c1b-9f38-0c6f3b7f4d11"
DEADLINE = 20.0  # seconds: generous, for a busy machine; the test waits for conditions, never sleeps


class StallingNotify(FakeNotify):
    """The local Notify, but every status read (``GET /v2/notifications/<id>``) stalls for
    ``stall`` seconds (30 by default) unless :meth:`release` is called first."""

    def __init__(self, *templates: str, stall: float = 30.0) -> None:
        super().__init__(email_templates=templates)
        self.stall = stall
        self.stalled = threading.Event()  # set when a status read has entered the stall
        self._released = threading.Event()

    def release(self) -> None:
        """End the stall now, and let every later status read through at once."""
        self._released.set()

    def get_one(self, notification_id: str) -> dict[str, Any]:
        self.stalled.set()
        self._released.wait(self.stall)
        return super().get_one(notification_id)


@pytest.fixture
def notify() -> Iterator[StallingNotify]:
    fake = StallingNotify(TEMPLATE)
    with fake:
        try:
            yield fake
        finally:
            fake.release()  # never leave a server thread stalled behind a failed test


@pytest.fixture
def rt(database_url: str, tmp_path: Path, notify: StallingNotify) -> Iterator[Runtime]:
    runtime = letter_runtime(
        database_url,
        tmp_path / "var",
        MovableClock(NOW),
        notify_api_key=notify.api_key,
        notify_base_url=notify.base_url,
        notify_email_template_id=TEMPLATE,
    )
    yield runtime
    runtime.close()


def referred_and_decided(hhmm: str, case: str = "C1") -> list[dict[str, Any]]:
    """A referral and a decision of no further action: letters to the referrer and the family."""
    return [
        referral(case, f"2026-11-03T{hhmm}:00+00:00", id=f"{case}-ref", household=[person("P1")]),
        event("decision.made", case, f"2026-11-03T{hhmm}:30+00:00", id=f"{case}-dec", outcome="nfa"),
    ]


def test_a_stalled_status_read_holds_up_neither_an_import_nor_a_sweep(
    rt: Runtime, notify: StallingNotify
) -> None:
    assert notify.stall == 30.0  # the stand-in's default: far longer than anything below takes
    report = import_events(rt, *referred_and_decided("08:00"), now=NOW.isoformat())
    assert report.ok, report.rejected
    sent = letters_of(rt, "C1")
    assert {m.channel for m in sent} == {"notify_email", "notify_letter"}
    assert set(sweep_and_deliver(rt, NOW).values()) == {"sent"}
    [posted] = notify.of_type("letter")
    notify.set_status(posted.id, "returned-letter")

    # The sweep claims the sent messages whose status is due to be read...
    rt.clock.now = LATER  # type: ignore[attr-defined]
    first = sweeping.sweep(rt, SYSTEM, LATER)
    assert sorted(first.to_read) == sorted(m.id for m in sent)

    # ...and the read, run as its own task, stalls in Notify.
    outcome: dict[str, Any] = {}

    def read() -> None:
        try:
            outcome["counts"] = sweeping.read_statuses(rt, SYSTEM, first.to_read, LATER)
        except BaseException as exc:  # shown by the assertion below, not lost in the thread
            outcome["error"] = exc

    reader = threading.Thread(target=read, name="status-reader", daemon=True)
    reader.start()
    assert notify.stalled.wait(DEADLINE), "the status read never reached Notify"

    # While it is stalled: an import and a second sweep both run to the end.
    imported = import_events(rt, *referred_and_decided("09:00", case="C2"), now=LATER.isoformat())
    assert imported.ok and imported.accepted == 2, imported.rejected
    assert case_view(rt, "C2", LATER.isoformat())["state"]
    second = sweeping.sweep(rt, SYSTEM, LATER + timedelta(minutes=1))
    assert second.to_read == []  # asked about a minute ago: not claimed again
    assert sorted(second.to_deliver) == sorted(m.id for m in letters_of(rt, "C2"))
    assert reader.is_alive(), "the read returned before the import and the sweep had finished"
    assert "counts" not in outcome and "error" not in outcome
    assert all("delivery_status" not in m.payload for m in letters_of(rt, "C1"))

    # Released, the read records Notify's answer for every message it claimed.
    notify.release()
    reader.join(DEADLINE)
    assert not reader.is_alive(), "the status read did not finish once released"
    assert "error" not in outcome, outcome.get("error")
    assert outcome["counts"] == {"checked": len(sent), "failed": 1}
    after = {m.id: m for m in letters_of(rt, "C1")}
    returned = after[next(m.id for m in sent if m.channel == "notify_letter")]
    assert (returned.status, returned.payload["delivery_status"]) == ("failed", "returned-letter")
    emailed = [m for m in after.values() if m.channel == "notify_email"]
    assert {m.payload["delivery_status"] for m in emailed} == {"created"}
    assert all(m.payload["status_checked_at"] == LATER.isoformat() for m in after.values())
