"""Delivery under faults, on SQLite and PostgreSQL, against a real SMTP server (aiosmtpd on
127.0.0.1): a message is never sent twice and never loops.

- after the hand-over (the callback just before SMTP's final dot) a lost reply, a reset or a
  time-out makes the message ``unknown``, never a resend; the wait for that reply is RFC 5321's;
- a message that can never be built or sent fails within the attempt limit, with its error, and
  never stops the others in the same tick; a letter that fails becomes a task;
- a PDF's time limit is a failed attempt, retried with back-off, not a letter held for a person;
- a database blip between the hand-over and the record still records ``sent``, once (PostgreSQL);
- the email channel is chosen when sending, not when the letter was owed.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import psycopg
import pytest
from billiard.exceptions import SoftTimeLimitExceeded
from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.engine import make_url

import letters.pdf as pdf_module
import messaging.channels as channels_module
from config.wiring import Runtime
from messaging.outbox import OutboxAudit, OutboxMessage
from services import sweep as sweeping
from services.actors import SYSTEM
from tests.factories import (
    MovableClock,
    SmtpRecorder,
    audit_of,
    clocks_by_name,
    import_events,
    letter_of,
    letter_runtime,
    letters_of,
    person,
    referral,
    smtp_server,
    sweep_and_deliver,
)
from workflow.model import Case

NOW = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)  # Tuesday, office hours
REFERRER = "ref@school.example"
LATER = [NOW + timedelta(minutes=m) for m in (1, 30, 90, 240, 24 * 60)]  # past any back-off


@pytest.fixture
def build(database_url: str, tmp_path: Path) -> Iterator[Callable[..., Runtime]]:
    """Runtimes on one migrated database, their channels chosen by the settings given."""
    made: list[Runtime] = []

    def make(url: str | None = None, **settings: Any) -> Runtime:
        made.append(letter_runtime(url or database_url, tmp_path / "var", MovableClock(NOW), **settings))
        return made[-1]

    yield make
    for rt in made:
        rt.close()


def take(rt: Runtime, *events: dict[str, Any]) -> None:
    report = import_events(rt, *events, now=NOW.isoformat())
    assert report.ok, report.rejected


def acknowledgement(rt: Runtime, case: str = "C1") -> int:
    """A referral on ``case`` owing one letter: the referrer's acknowledgement, by email."""
    take(rt, referral(case, f"2026-11-03T08:0{len(letters_of(rt, case))}:00+00:00", id=f"r-{case}"))
    return int(letter_of(rt, case, "referrer_acknowledgement", "referrer").id)


def outbox_row(rt: Runtime, outbox_id: int) -> OutboxMessage:
    with rt.db.transaction() as session:
        found = session.get(OutboxMessage, outbox_id)
        assert found is not None
        return found


def edit(rt: Runtime, outbox_id: int, **fields: Any) -> None:
    """Stage a bad input by hand (an address or a key no import would produce today). An email
    goes to the address the case holds when it is sent, so a bad ``address`` is put there."""
    with rt.db.transaction() as session:
        found = session.get(OutboxMessage, outbox_id)
        assert found is not None
        for name, value in fields.items():
            setattr(found, name, value)
        if "address" in fields and found.recipient_role == "referrer":
            case = session.get(Case, found.case_id)
            assert case is not None
            case.referrer = {**case.referrer, "email": fields["address"]}


# 1. After the hand-over: unknown, never a resend.


class AfterTheDot(SmtpRecorder):
    """Stores the whole message, then does not answer the final dot: it closes the connection
    (``drop``), resets it (``reset``: SO_LINGER 0, so the kernel sends RST) or stays silent for
    ``silence`` seconds before answering (``silent``)."""

    def __init__(self, fault: str, silence: float = 0.0) -> None:
        super().__init__()
        self.fault, self.silence = fault, silence

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(envelope)
        transport = server.transport
        if self.fault == "drop":
            transport.close()
        elif self.fault == "reset":
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        else:
            await asyncio.sleep(self.silence)
        return "250 Message accepted for delivery"


@pytest.mark.parametrize("fault", ["drop", "reset", "silent"])
def test_a_reply_lost_after_the_final_dot_makes_the_letter_unknown_and_it_is_never_resent(
    build: Callable[..., Runtime], monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    # The wait for the reply is RFC 5321's ten minutes; shortened here so a silent server times out.
    monkeypatch.setattr(channels_module, "FINAL_REPLY_TIMEOUT", 1.0)
    # Silent past the time-out, then a late 250: a QUIT sent after the time-out would read it.
    handler = AfterTheDot(fault, silence=1.6)
    with smtp_server(handler) as url:
        rt = build(smtp_url=url, smtp_timeout=5)
        ack = acknowledgement(rt)
        assert sweep_and_deliver(rt, NOW) == {ack: "unknown"}
        for later in LATER:  # sweeps past the sending timeout and every back-off
            assert sweep_and_deliver(rt, later) == {}
        assert rt.deliverer().deliver(ack) == "skipped: already unknown"  # a stray broker message
    assert len(handler.received) == 1
    [mail] = handler.to(REFERRER)
    assert mail["Message-ID"] == f"<letter.{ack}@caseloop>"
    lost = outbox_row(rt, ack)
    assert (lost.status, lost.attempts, lost.channel) == ("unknown", 1, "smtp")
    assert lost.handed_over_at is not None and lost.sent_at is None
    assert lost.last_error is not None and lost.last_error.startswith(
        "the outcome after hand-over is not known (SMTP: no reply to the end of the message"
    )
    assert [a for a, _, _ in audit_of(rt, ack)] == ["unknown"]


def test_the_reply_to_the_final_dot_is_awaited_longer_than_the_smtp_timeout(
    build: Callable[..., Runtime],
) -> None:
    # A server scanning the message takes 3 s to answer the dot; every other step has 1 s.
    handler = AfterTheDot("silent", silence=3.0)
    with smtp_server(handler) as url:
        rt = build(smtp_url=url, smtp_timeout=1)
        ack = acknowledgement(rt)
        assert sweep_and_deliver(rt, NOW) == {ack: "sent"}
    assert len(handler.received) == 1 and outbox_row(rt, ack).status == "sent"


def test_the_connect_timeout_stays_short(build: Callable[..., Runtime]) -> None:
    with socket.socket() as silent:  # accepts and never greets
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        rt = build(smtp_url=f"smtp://127.0.0.1:{silent.getsockname()[1]}", smtp_timeout=1)
        ack = acknowledgement(rt)
        assert sweep_and_deliver(rt, NOW) == {ack: "retrying"}
    tried = outbox_row(rt, ack)
    assert (tried.status, tried.attempts, tried.handed_over_at) == ("queued", 1, None)


class NoQuit(SmtpRecorder):
    """Accepts the message, then answers QUIT with something other than 221."""

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        return "421 4.3.2 Shutting down"


def test_a_quit_that_goes_wrong_after_a_250_does_not_make_a_resend(build: Callable[..., Runtime]) -> None:
    handler = NoQuit()
    with smtp_server(handler) as url:
        rt = build(smtp_url=url, smtp_timeout=2)
        ack = acknowledgement(rt)
        assert sweep_and_deliver(rt, NOW) == {ack: "sent"}
        for later in LATER:
            assert sweep_and_deliver(rt, later) == {}
    assert len(handler.received) == 1 and outbox_row(rt, ack).attempts == 1


# 2. What can never be built or sent fails, within the attempt limit, and the tick goes on.

BAD_INPUTS = {
    "CR/LF in the address": {"address": f"{REFERRER}\r\nBcc: spy@elsewhere.example"},
    "CR/LF in the reference header": {"idempotency_key": "letter:C1:ack\r\nBcc: spy@elsewhere.example"},
    "an internationalised address": {"address": "jörg@schule.example"},
    "an address the mail library chokes on": {"address": "head@[10.0.0"},
}


@pytest.mark.parametrize("bad", list(BAD_INPUTS), ids=list(BAD_INPUTS))
def test_a_letter_that_can_never_be_sent_fails_within_the_limit_and_the_tick_goes_on(
    build: Callable[..., Runtime], bad: str
) -> None:
    handler = SmtpRecorder()
    with smtp_server(handler) as url:
        rt = build(smtp_url=url, max_attempts=3)
        doomed, fine = acknowledgement(rt, "C1"), acknowledgement(rt, "C2")
        edit(rt, doomed, **BAD_INPUTS[bad])
        ticks = []
        for now in [NOW, *LATER]:
            rt.clock.now = now  # type: ignore[attr-defined]
            ticks.append(sweeping.tick(rt, SYSTEM, now).outcomes)
    assert ticks[0]["sent"] == 1 and ticks[0]["error"] == 0
    assert all(t["error"] == 0 for t in ticks)  # nothing escaped the relay
    assert sum(sum(t.values()) for t in ticks) <= 1 + 3  # the good one once; the bad within the limit
    failed = outbox_row(rt, doomed)
    assert failed.status == "failed" and 1 <= failed.attempts <= 3, failed.last_error
    assert failed.last_error and failed.last_error.startswith(("the email could not be built: ", "SMTP: "))
    assert outbox_row(rt, fine).status == "sent"
    assert [m["To"] for m in handler.to(REFERRER)] == [REFERRER]  # only the good one went
    assert all("spy@" not in rcpt for e in handler.received for rcpt in e.rcpt_tos)
    # A letter with a duty that failed for good is a task for the worker.
    task = clocks_by_name(rt, "C1", (NOW + timedelta(days=1)).isoformat()).get("failed_letter")
    assert task is not None and task["status"] == "running"


def test_an_attempt_that_raises_at_every_try_ends_failed_at_the_limit(
    build: Callable[..., Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Rendering that always breaks with something unforeseen (not a RenderError): each try is an
    # attempt, and the limit ends it.
    rt = build(max_attempts=3)
    take(
        rt,
        referral(
            "C1",
            "2026-11-03T08:00:00+00:00",
            id="r1",
            referrer={
                "source": "2A",
                "name": "Referrer Example",
                "organisation": "Test Primary",
                "address": "1 School Lane, Borough",
            },
        ),
    )
    [posted] = [m.id for m in letters_of(rt, "C1")]

    def broken(html: str, assets: Path | None) -> bytes:
        raise RuntimeError("a font vanished")

    monkeypatch.setattr(pdf_module, "_weasyprint", broken)
    outcomes = [sweeping.tick(rt, SYSTEM, now).outcomes for now in [NOW, *LATER]]
    assert [dict(o) for o in outcomes if o] == [{"retrying": 1}, {"retrying": 1}, {"failed": 1}]
    failed = outbox_row(rt, posted)
    assert (failed.status, failed.attempts, failed.last_error) == (
        "failed",
        3,
        "RuntimeError: a font vanished",
    )


# 3. A PDF's time limit is retried, not held.


@pytest.mark.parametrize("where", ["inside WeasyPrint", "around WeasyPrint"])
def test_a_pdf_time_limit_is_a_retried_attempt_not_a_held_letter(
    build: Callable[..., Runtime], monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    rt = build(retry_base_seconds=30)
    take(
        rt,
        referral(
            "C1",
            "2026-11-03T08:00:00+00:00",
            id="r1",
            referrer={
                "source": "2A",
                "name": "Referrer Example",
                "organisation": "Test Primary",
                "address": "1 School Lane, Borough",
            },
        ),
    )
    [posted] = [m.id for m in letters_of(rt, "C1")]
    real = pdf_module._weasyprint
    calls = []

    if where == "inside WeasyPrint":  # the library's own call, so letters.pdf wraps it in PdfError
        from weasyprint import HTML

        real_write = HTML.write_pdf

        def write_pdf(self: Any, *args: Any, **kwargs: Any) -> Any:
            calls.append(1)
            if len(calls) == 1:
                raise SoftTimeLimitExceeded()
            return real_write(self, *args, **kwargs)

        monkeypatch.setattr(HTML, "write_pdf", write_pdf)
    else:

        def once(html: str, assets: Path | None) -> bytes:
            calls.append(1)
            if len(calls) == 1:
                raise SoftTimeLimitExceeded()
            return real(html, assets)

        monkeypatch.setattr(pdf_module, "_weasyprint", once)
    assert sweep_and_deliver(rt, NOW) == {posted: "retrying"}
    retried = outbox_row(rt, posted)
    assert (retried.status, retried.attempts, retried.dispatched_at) == ("queued", 1, None)
    assert NOW + timedelta(seconds=15) <= retried.next_attempt_at <= NOW + timedelta(seconds=45)
    assert retried.last_error is not None and "SoftTimeLimitExceeded" in retried.last_error
    assert [a for a, _, _ in audit_of(rt, posted)] == []  # never held for a person
    assert sweep_and_deliver(rt, NOW + timedelta(seconds=10)) == {}  # backing off
    assert sweep_and_deliver(rt, NOW + timedelta(minutes=1)) == {posted: "sent"}
    sent = outbox_row(rt, posted)
    assert (sent.status, sent.attempts, sent.channel) == ("sent", 2, "print")
    assert len(list((rt.settings.print_dir).rglob("*.pdf"))) == 1


# 5. A database blip between the hand-over and the record (PostgreSQL).


def _application_url(url: str, name: str) -> str:
    return make_url(url).update_query_dict({"application_name": name}).render_as_string(hide_password=False)


def _admin(url: str) -> str:
    return make_url(url).set(drivername="postgresql", query={}).render_as_string(hide_password=False)


@pytest.mark.postgres
def test_a_database_blip_after_the_hand_over_still_records_sent_once(
    postgres_schema_url: str, tmp_path: Path
) -> None:
    name = f"caseloop-{make_url(postgres_schema_url).query['options'][-12:]}"  # this test's schema
    url = _application_url(postgres_schema_url, name)
    admin = _admin(postgres_schema_url)
    terminated: list[int] = []
    armed = threading.Event()

    def kill(pids: str, *args: Any) -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            rows = conn.execute(
                f"SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE {pids}", args
            ).fetchall()
            terminated.extend(1 for r in rows if r[0])

    def on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        # The record's first connection is cut after the pool's ping: the try itself fails.
        if armed.is_set():
            armed.clear()
            kill("pid = %s", dbapi_connection.info.backend_pid)

    class Blip(SmtpRecorder):
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            self.received.append(envelope)
            # The worker has recorded its hand-over; before it records the send, every
            # connection it holds is terminated, and so is the next one it takes.
            kill("application_name = %s", name)
            armed.set()
            return "250 Message accepted for delivery"

    handler = Blip()
    with smtp_server(handler) as smtp_url:
        rt = letter_runtime(url, tmp_path / "var", MovableClock(NOW), smtp_url=smtp_url)
        try:
            sa_event.listen(rt.db.engine, "checkout", on_checkout)
            ack = acknowledgement(rt)
            assert sweep_and_deliver(rt, NOW) == {ack: "sent"}
            for later in LATER:
                assert sweep_and_deliver(rt, later) == {}
            assert terminated, "no connection was terminated"
            assert not armed.is_set(), "the record never took a connection after the blip"
            sent = outbox_row(rt, ack)
            with rt.db.transaction() as session:
                query = select(OutboxAudit.action).where(OutboxAudit.outbox_id == ack)
                actions = list(session.scalars(query))
        finally:
            rt.close()
    assert (sent.status, sent.attempts, sent.provider_ref) == ("sent", 1, f"<letter.{ack}@caseloop>")
    assert len(handler.received) == 1
    assert actions == ["sent"]


# 6. The email channel is chosen when sending.


def test_a_letter_owed_before_smtp_was_set_up_goes_by_smtp(build: Callable[..., Runtime]) -> None:
    before = build()  # only the outbox folder for email
    take(
        before,
        referral(
            "C1",
            "2026-11-03T08:00:00+00:00",
            id="r1",
            household=[person("P1", preferred_channel="email", email="p1@family.example")],
        ),
    )
    ack = letter_of(before, "C1", "referrer_acknowledgement", "referrer").id
    assert outbox_row(before, ack).channel == "file"
    handler = SmtpRecorder()
    with smtp_server(handler) as url:
        after = build(smtp_url=url)
        assert sweep_and_deliver(after, NOW)[ack] == "sent"
    [mail] = handler.to(REFERRER)
    assert mail["Message-ID"] == f"<letter.{ack}@caseloop>"
    sent = outbox_row(after, ack)
    assert (sent.status, sent.channel, sent.provider_ref) == ("sent", "smtp", f"<letter.{ack}@caseloop>")
    assert not list((after.settings.outbox_dir).glob("*.eml"))
    assert message_from_bytes(handler.received[0].content, policy=policy.default)["To"] == REFERRER
