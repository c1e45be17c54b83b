"""Staff import (issue 3, part 3) and the outbox with its channels (parts 5 and 6), on both databases.

Delivery goes through real channels: ``.eml`` files in a temporary folder, and a real SMTP server
(aiosmtpd on 127.0.0.1) whose handler can refuse with 4xx or 5xx replies.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from cli.main import app
from config.settings import Settings
from config.wiring import Runtime, build_runtime
from messaging.channels import FileChannel
from messaging.outbox import OutboxMessage
from tests.factories import (
    STAFF_HEADER,
    front_door_staff,
    import_staff,
    no_contact_referrer,
    reconcile,
    smtp_server,
    staff_csv,
    staff_row,
    sweep,
)
from tests.factories import event as ev
from tests.factories import import_events as events
from tests.factories import referral as ref
from workflow.reminders import DIGEST_KIND
from workflow.staff import Staff, StaffFileError, import_csv

NOW = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)  # Tue 3 Nov 2026, 10:00 GMT: office hours


def staff_ids(rt: Runtime) -> list[str]:
    with rt.db.transaction() as session:
        return list(session.scalars(select(Staff.id).order_by(Staff.id)))


def upsert(rt: Runtime, *rows: str, when: str = "2026-01-05T12:00:00+00:00") -> tuple[Any, ...]:
    """Import ``rows``: (created, updated, unchanged, rejected)."""
    with rt.db.transaction() as session:
        r = import_csv(session, staff_csv(*rows), datetime.fromisoformat(when))
    return r.created, r.updated, r.unchanged, r.rejected


def test_staff_import_is_an_idempotent_upsert(runtime: Runtime) -> None:
    assert upsert(runtime, *front_door_staff()) == (4, 0, 0, [])
    assert upsert(runtime, *front_door_staff()) == (0, 0, 4, [])
    edited = [
        *front_door_staff()[:3],
        staff_row("W2", manager="TM1", email="new.w2@council.example"),
        staff_row("W3", manager="TM1"),
    ]
    assert upsert(runtime, *edited, when="2026-02-01T12:00:00+00:00") == (1, 1, 3, [])
    with runtime.db.transaction() as session:
        w2 = session.get(Staff, "W2")
        assert w2 is not None
        assert (w2.email, w2.manager_id, w2.updated_at) == (
            "new.w2@council.example",
            "TM1",
            datetime(2026, 2, 1, 12, tzinfo=UTC),
        )
        assert session.get(Staff, "W1").updated_at == datetime(2026, 1, 5, 12, tzinfo=UTC)  # type: ignore[union-attr]
    assert staff_ids(runtime) == ["SM1", "TM1", "W1", "W2", "W3"]


def test_bad_staff_rows_are_rejected_with_row_number_and_reason_and_good_rows_taken(runtime: Runtime) -> None:
    created, updated, unchanged, rejected = upsert(
        runtime,
        staff_row("SM1", "service_manager"),  # row 2
        staff_row("X1", "janitor"),
        staff_row("X2", email="not-an-email"),
        staff_row("X3", manager="NOBODY"),
        "X4,Only Five,x4@council.example,social_worker,front-door",
        staff_row("W1", manager="TM1"),  # row 7: its manager comes later in the file
        staff_row("TM1", "team_manager", manager="SM1"),
        staff_row("W1", manager="TM1"),
        staff_row("X5", name=" "),
        staff_row("X6", manager="X6"),  # row 11
    )
    assert sorted(rejected, key=lambda r: int(r.split(":")[0][4:])) == [
        "row 3: role 'janitor' is not one of social_worker, team_manager, service_manager",
        "row 4: email 'not-an-email' is not an email address",
        "row 5: manager_id 'NOBODY' is not a known member of staff",
        "row 6: expected 6 columns, found 5",
        "row 9: id W1 appears twice in the file",
        "row 10: name is empty",
        "row 11: manager_id: nobody manages themselves",
    ]
    assert (created, updated, unchanged) == (3, 0, 0)
    assert staff_ids(runtime) == ["SM1", "TM1", "W1"]


def test_a_manager_whose_own_row_is_rejected_is_not_a_known_manager(runtime: Runtime) -> None:
    broken_manager = staff_row("TM9", "team_manager", email="broken")
    assert upsert(runtime, broken_manager, staff_row("W9", manager="TM9"))[3] == [
        "row 2: email 'broken' is not an email address",
        "row 3: manager_id 'TM9' is not a known member of staff",
    ]
    assert staff_ids(runtime) == []


@pytest.mark.parametrize("header", ["id,name,email,role,team", "id,name,mail,role,team,manager_id", ""])
def test_a_wrong_header_refuses_the_whole_file(runtime: Runtime, header: str) -> None:
    lines = staff_csv(*front_door_staff(), header=header) if header else []
    with (
        pytest.raises(
            StaffFileError,
            match=r"^row 1: the header must be exactly "
            r"id,name,email,role,team,manager_id$",
        ),
        runtime.db.transaction() as session,
    ):
        import_csv(session, lines, NOW)
    assert staff_ids(runtime) == []


def cli(rt: Runtime, *args: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"CASELOOP_DATABASE_URL": rt.settings.database_url})


def test_cli_staff_import_exit_codes(runtime: Runtime, tmp_path: Path) -> None:
    def staff_import(name: str, *lines: str) -> tuple[int, str, str]:
        if lines:
            (tmp_path / name).write_text("".join(lines), encoding="utf-8")
        result = cli(runtime, "staff", "import", str(tmp_path / name))
        return result.exit_code, result.stdout, result.stderr

    good = staff_csv(*front_door_staff())
    assert staff_import("good.csv", *good) == (0, "created 4, updated 0, unchanged 0, rejected 0\n", "")
    assert staff_import("good.csv") == (0, "created 0, updated 0, unchanged 4, rejected 0\n", "")
    assert staff_import("bad.csv", *staff_csv(staff_row("W3", "boss"), staff_row("W4"))) == (
        1,
        "created 1, updated 0, unchanged 0, rejected 1\n",
        "rejected: row 2: role 'boss' is not one of social_worker, team_manager, service_manager\n",
    )
    wrong = (2, "", f"error: row 1: the header must be exactly {STAFF_HEADER}\n")
    assert staff_import("wrong.csv", "id;name\n") == wrong
    assert staff_import("none.csv") == (2, "", f"error: {tmp_path / 'none.csv'}: no such file\n")
    assert staff_ids(runtime) == ["SM1", "TM1", "W1", "W2", "W4"]


# The outbox. Each test plans real digests: workers W1, W2, ... each have a case due on Tue 3 Nov 2026.
# The referrers leave no contact details, so no letter joins the digests in the outbox (the
# referrer-acknowledgement clock still runs, unmet, and is reminded with the decision clock).


def with_digests(rt: Runtime, outbox: Path, workers: int = 2) -> list[int]:
    """Staff, one allocated case per worker due on 3 Nov, and the 3 Nov sweep: the digests' ids."""
    rt.channels["file"] = FileChannel(outbox, rt.settings.mail_from)
    import_staff(rt, *front_door_staff(), *(staff_row(f"W{n}", manager="TM1") for n in range(3, workers + 1)))
    for n in range(1, workers + 1):
        allocated = ev("worker.allocated", f"C{n}", "2026-11-02", worker=f"W{n}")
        referred = ref(f"C{n}", "2026-11-02T09:00:00+00:00", referrer=no_contact_referrer("1A"))
        assert events(rt, referred, allocated, now="2026-11-02").ok
    return sweep(rt, NOW).to_deliver


def row(rt: Runtime, outbox_id: int) -> OutboxMessage:
    with rt.db.transaction() as session:
        found = session.get(OutboxMessage, outbox_id)
        assert found is not None
        return found


def test_the_file_channel_writes_an_eml_and_records_the_send(runtime: Runtime, tmp_path: Path) -> None:
    w1, _ = with_digests(runtime, tmp_path / "outbox")
    queued = row(runtime, w1)
    assert (queued.status, queued.channel, queued.kind, queued.attempts) == ("queued", "file", DIGEST_KIND, 0)
    assert runtime.deliverer().deliver(w1) == "sent"
    sent = row(runtime, w1)
    with runtime.db.transaction() as session:
        expected_hash = runtime.deliverer().renderers[DIGEST_KIND](session, sent).content_hash
    assert (sent.status, sent.attempts, sent.provider_ref) == ("sent", 1, f"outbox-{w1}.eml")
    assert sent.content_hash == expected_hash and len(expected_hash) == 64
    assert sent.sending_started_at <= sent.handed_over_at <= sent.sent_at  # type: ignore[operator]
    mail = message_from_bytes((tmp_path / "outbox" / f"outbox-{w1}.eml").read_bytes(), policy=policy.default)
    # One deadline: the acknowledgement duty is moot, as the referrer left no contact details.
    assert (mail["To"], mail["Subject"]) == ("w1@council.example", "caseloop: 1 deadline needs attention")
    assert [p.name for p in (tmp_path / "outbox").iterdir()] == [f"outbox-{w1}.eml"]


class Smtp:
    """An aiosmtpd handler that records what it is sent, or refuses at RCPT or DATA with a reply."""

    def __init__(self, rcpt: str | None = None, data: str | None = None) -> None:
        self.rcpt, self.data, self.received = rcpt, data, cast(list[Any], [])
        self.calls = {"RCPT": 0, "DATA": 0}

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        self.calls["RCPT"] += 1
        if not self.rcpt:
            envelope.rcpt_tos.append(address)
        return self.rcpt or "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.calls["DATA"] += 1
        if not self.data:
            self.received.append(envelope)
        return self.data or "250 Message accepted for delivery"


@pytest.fixture
def smtp_runtime(runtime: Runtime, tmp_path: Path) -> Iterator[Any]:
    """Builds runtimes on the same (migrated) database that send to staff over SMTP at ``url``."""
    made: list[Runtime] = []

    def build(url: str, **settings: Any) -> Runtime:
        made.append(
            build_runtime(
                Settings(
                    database_url=runtime.settings.database_url,
                    var_dir=tmp_path / "var",
                    smtp_url=url,
                    **settings,
                )
            )
        )
        return made[-1]

    yield build
    for rt in made:
        rt.close()


def test_smtp_delivers_to_a_real_server_without_the_childs_name(smtp_runtime: Any, tmp_path: Path) -> None:
    handler = Smtp()
    with smtp_server(handler) as url:
        rt = smtp_runtime(url)
        w1, w2 = with_digests(rt, tmp_path / "outbox")
        assert [rt.deliverer().deliver(i) for i in (w1, w2)] == ["sent", "sent"]
    assert [(e.mail_from, e.rcpt_tos) for e in handler.received] == [
        ("caseloop@localhost", ["w1@council.example"]),
        ("caseloop@localhost", ["w2@council.example"]),
    ]
    mail = message_from_bytes(handler.received[0].content, policy=policy.default)
    assert mail["Subject"] == "caseloop: 1 deadline needs attention"  # the acknowledgement is moot
    assert mail["Message-ID"] == "<reminder_digest.W1.2026-11-03@caseloop>"
    text = mail.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "Open the case: http://localhost:8000/cases/C1" in text
    # Reminders are acknowledged with one click on the web page, no longer with a command.
    assert "Acknowledge each with one click on your work page: http://localhost:8000/my-work" in text
    html = mail.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert '<a href="http://localhost:8000/my-work">' in html and "/cases/C1" in html
    assert "reminders ack" not in text + html
    assert "Child Example" not in mail["Subject"] + text
    sent = row(rt, w1)
    assert (sent.channel, sent.status, sent.provider_ref) == ("smtp", "sent", mail["Message-ID"])
    assert list((tmp_path / "outbox").glob("*")) == []


@pytest.mark.parametrize(
    ("refuse", "outcome", "error", "calls"),
    [
        ({"rcpt": "451 4.3.0 Later"}, "retrying", "SMTP server refused the recipient (451)", (2, 0)),
        ({"data": "451 4.3.0 Try again later"}, "retrying", "SMTP server replied 451", (2, 2)),
        ({"rcpt": "550 5.1.1 No such user"}, "failed", "SMTP server refused the recipient (550)", (1, 0)),
        ({"data": "550 5.7.1 Rejected"}, "failed", "SMTP server replied 550", (1, 1)),
    ],
)
def test_4xx_is_retried_later_and_5xx_fails_at_once(
    smtp_runtime: Any, tmp_path: Path, refuse: dict[str, str], outcome: str, error: str, calls: Any
) -> None:
    handler = Smtp(**refuse)
    with smtp_server(handler) as url:
        rt = smtp_runtime(url, max_attempts=3, retry_base_seconds=30)
        w1, _ = with_digests(rt, tmp_path / "outbox")
        before = datetime.now(UTC)
        assert rt.deliverer().deliver(w1) == outcome
        after, tried = datetime.now(UTC), row(rt, w1)
        again = rt.deliverer().deliver(w1)  # the broker redelivers at once
    assert (tried.status, tried.attempts, tried.last_error) == (
        "queued" if outcome == "retrying" else "failed",
        1,
        error,
    )
    assert again == ("retrying" if outcome == "retrying" else "skipped: already failed")
    assert (handler.calls["RCPT"], handler.calls["DATA"]) == calls  # a 5xx is never retried
    if outcome == "retrying":
        # Attempt 1 backs off 30 s with jitter (15 to 45 s), queued again and not yet dispatched.
        assert tried.dispatched_at is None
        assert before + timedelta(seconds=15) <= tried.next_attempt_at <= after + timedelta(seconds=45)


def test_a_retryable_failure_becomes_failed_after_max_attempts(smtp_runtime: Any, tmp_path: Path) -> None:
    handler = Smtp(rcpt="451 4.3.0 Try again later")
    with smtp_server(handler) as url:
        rt = smtp_runtime(url, max_attempts=3)
        w1, _ = with_digests(rt, tmp_path / "outbox")
        outcomes = [rt.deliverer().deliver(w1) for _ in range(4)]
    assert outcomes == ["retrying", "retrying", "failed", "skipped: already failed"]
    assert (row(rt, w1).status, row(rt, w1).attempts, handler.calls["RCPT"]) == ("failed", 3, 3)
    listed = cli(rt, "outbox", "list", "--status", "failed", "--json")
    assert [(r["id"], r["status"]) for r in json.loads(listed.stdout)] == [(w1, "failed")]


@pytest.mark.parametrize("kind", ["dead-port", "silent"])
def test_smtp_fails_within_its_timeout(smtp_runtime: Any, tmp_path: Path, kind: str) -> None:
    with socket.socket() as s:  # a bound port nobody listens on, or one that accepts and never speaks
        s.bind(("127.0.0.1", 0))
        if kind == "silent":
            s.listen(8)
        rt = smtp_runtime(f"smtp://127.0.0.1:{s.getsockname()[1]}", smtp_timeout=2)
        w1, _ = with_digests(rt, tmp_path / "outbox")
        started = time.monotonic()
        outcome = rt.deliverer().deliver(w1)
        elapsed = time.monotonic() - started
    # The 2-second timeout, plus rendering and the database on a loaded machine: far below the
    # 20 seconds of the default, so the setting is what ended the wait.
    assert elapsed < 2 + 10
    tried = row(rt, w1)
    assert (outcome, tried.status, tried.attempts) == ("retrying", "queued", 1)
    assert tried.last_error is not None and tried.last_error.startswith("SMTP connection failed: ")


def test_reconcile_stale_requeues_confirms_or_marks_unknown(smtp_runtime: Any, tmp_path: Path) -> None:
    rt = smtp_runtime("smtp://127.0.0.1:9")  # never connected to: reconciling asks no server
    ids = with_digests(rt, tmp_path / "outbox", workers=5)
    no_handover, file_there, file_missing, smtp_handed, fresh = ids
    long_ago, handed = NOW - timedelta(minutes=20), NOW - timedelta(minutes=19)
    with rt.db.transaction() as session:  # five workers died mid-send, at different moments
        for oid in ids:
            message = session.get(OutboxMessage, oid)
            assert message is not None
            message.status, message.attempts, message.sending_started_at = "sending", 1, long_ago
            message.channel = "smtp" if oid == smtp_handed else "file"
            message.handed_over_at = None if oid in (no_handover, fresh) else handed
            if oid == fresh:
                message.sending_started_at = NOW - timedelta(minutes=1)  # a live send
            if oid == file_there:  # the file was renamed into place before the worker died
                email = rt.deliverer().renderers[DIGEST_KIND](session, message)
                rt.channels["file"].send(email, lambda: None)
    counts = reconcile(rt, rt.channels, NOW, timedelta(seconds=rt.settings.sending_timeout))
    assert counts == {"requeued": 2, "confirmed": 1, "unknown": 1}
    settled = {oid: row(rt, oid) for oid in ids}
    assert [
        (settled[i].status, settled[i].next_attempt_at, settled[i].dispatched_at)
        for i in (no_handover, file_missing)
    ] == [("queued", NOW, None)] * 2
    assert (settled[file_there].status, settled[file_there].sent_at) == ("sent", handed)
    assert (settled[smtp_handed].status, settled[smtp_handed].last_error) == (
        "unknown",
        "the worker stopped after handing the message over; check before resending",
    )
    assert settled[fresh].status == "sending"
    assert rt.deliverer().deliver(smtp_handed) == "skipped: already unknown"  # never blindly resent


def test_a_redelivered_or_duplicate_deliver_sends_once(smtp_runtime: Any, tmp_path: Path) -> None:
    handler = Smtp()
    with smtp_server(handler) as url:
        rt = smtp_runtime(url)
        w1, _ = with_digests(rt, tmp_path / "outbox")
        barrier, outcomes = threading.Barrier(3), []

        def deliver() -> None:
            barrier.wait()
            outcomes.append(rt.deliverer().deliver(w1))

        threads = [threading.Thread(target=deliver) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        outcomes.append(rt.deliverer().deliver(w1))  # redelivered later by the broker
    assert outcomes.count("sent") == 1 and outcomes[-1] == "skipped: already sent"
    assert set(outcomes) - {"sent"} <= {"skipped: already sending", "skipped: already sent"}
    assert [e.rcpt_tos for e in handler.received] == [["w1@council.example"]]
    assert row(rt, w1).attempts == 1


def test_outbox_list_json_rows_and_the_status_filter(runtime: Runtime, tmp_path: Path) -> None:
    w1, w2 = with_digests(runtime, tmp_path / "outbox")
    assert runtime.deliverer().deliver(w1) == "sent"
    sent_at = row(runtime, w1).sent_at
    listed = cli(runtime, "outbox", "list", "--json")
    assert listed.exit_code == 0, listed.output
    keys = ["id", "case", "kind", "recipient_role", "recipient", "channel", "status", "created", "sent"]
    common = {
        "case": None,
        "kind": DIGEST_KIND,
        "recipient_role": "worker",
        "channel": "file",
        "created": NOW.isoformat(),
    }
    assert [{k: r[k] for k in keys} for r in json.loads(listed.stdout)] == [
        {**common, "id": w2, "recipient": "W2", "status": "queued", "sent": None},
        {**common, "id": w1, "recipient": "W1", "status": "sent", "sent": sent_at.isoformat()},  # type: ignore[union-attr]
    ]
    queued = json.loads(cli(runtime, "outbox", "list", "--status", "queued", "--json").stdout)
    assert [r["id"] for r in queued] == [w2]
    assert json.loads(cli(runtime, "outbox", "list", "--status", "failed", "--json").stdout) == []
    bad = cli(runtime, "outbox", "list", "--status", "lost")
    assert bad.exit_code == 2
    # Letters brought two statuses: rejected (by a reviewer) and cancelled (the duty done another way).
    assert bad.stderr.startswith(
        "error: --status: 'lost' is not one of held, rejected, cancelled, queued, "
        "sending, sent, failed, unknown"
    )
