"""Personal data stays out of error text, logs, other accounts' reach and links (issue 9, point 6).

Canary values (a name, an address) are planted where a careless error or file would show them,
then looked for. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
import stat
from datetime import UTC, date, datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from config.wiring import Runtime
from letters.pdf import render_pdf
from messaging.channels import FileChannel, PermanentDeliveryError
from messaging.channels.printing import PrintChannel, make_batch
from messaging.email import OUTBOX_ID_HEADER, OutgoingEmail
from messaging.letter import OutgoingLetter
from services import sweep as sweeping
from services.actors import SYSTEM
from tasks import jobs
from tasks import runtime as task_runtime
from tests.factories import event, import_events, import_staff, referral
from workflow import batch
from workflow.model import ReceivedEvent

CANARY_NAME = "Canary Wolfenden Privacy"
CANARY_ADDRESS = "canary.privacy@family.example"
NOW = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)  # a Tuesday, in office hours


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# Database errors: never the values.


def _scratch(rt: Runtime) -> None:
    with rt.db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE scratch (email VARCHAR(40) UNIQUE, name VARCHAR(8) NOT NULL)"))
        conn.execute(text("INSERT INTO scratch VALUES (:e, 'first')"), {"e": CANARY_ADDRESS})


@pytest.mark.parametrize(
    ("sql", "values"),
    [
        ("INSERT INTO scratch VALUES (:e, 'again')", {"e": CANARY_ADDRESS}),  # unique: "Key (email)=(…)"
        (
            "INSERT INTO scratch VALUES (:e, NULL)",
            {"e": CANARY_ADDRESS + ".uk"},
        ),  # "Failing row contains (…)"
        ("INSERT INTO scratch VALUES (:e, :n)", {"e": "other@example.org", "n": CANARY_NAME}),  # too long
    ],
    ids=["unique", "not-null", "too-long"],
)
def test_a_database_error_holds_no_value_of_the_statement(
    runtime: Runtime, sql: str, values: dict[str, str]
) -> None:
    _scratch(runtime)
    try:
        with runtime.db.engine.begin() as conn:
            conn.execute(text(sql), values)
    except DBAPIError as exc:
        error: DBAPIError | None = exc
    else:
        error = None
    if error is None:
        assert runtime.db.dialect == "sqlite", "only SQLite ignores a VARCHAR's length"
        return
    shown = f"{error}\n{error.orig}\n{error!r}"
    for value in values.values():
        assert value not in shown
        assert value.split("@")[0] not in shown
    assert "SQL parameters hidden" in str(error)
    if runtime.db.dialect == "postgresql" and isinstance(error, IntegrityError):
        # The detail is still there for code that must know which row: only not in the text.
        assert CANARY_ADDRESS in (error.orig.diag.message_detail or "")  # type: ignore[union-attr]


def test_a_failed_batch_write_is_an_integrity_error_holding_no_value_of_its_rows(runtime: Runtime) -> None:
    """A batch hands its rows to the driver at once (COPY on PostgreSQL, whose DETAIL and CONTEXT
    quote the row): an id another importer took first is still an IntegrityError, for the batch
    to be taken line by line, and its text still shows none of the row."""
    taken = f"id-{CANARY_NAME}"
    import_events(runtime, referral("C1", "2026-03-02", id=taken), now=NOW.isoformat())
    with runtime.writing() as uow:
        loaded = batch.Loaded(batch.Ids(uow.session))
        row = ReceivedEvent(
            id=loaded.ids.next(ReceivedEvent),
            event_id=taken,
            raw=CANARY_ADDRESS,
            status="accepted",
            source="f.jsonl",
            line_no=1,
            received_at=NOW,
        )
        loaded.new[id(row)] = row
        with pytest.raises(IntegrityError) as caught:
            batch.write(uow.session, loaded)
    shown = f"{caught.value}\n{caught.value.orig}\n{caught.value!r}"
    assert CANARY_NAME not in shown
    assert CANARY_ADDRESS not in shown


# Logs: error types and outbox ids, never an exception's text.


class RefusingChannel:
    """A provider whose refusal quotes the recipient, as SMTP servers and libraries do."""

    name = "file"

    def send(self, item: Any, on_handover: Any) -> str:
        raise PermanentDeliveryError(f"550 mailbox {CANARY_ADDRESS} ({CANARY_NAME}) unknown", 550)

    def confirm(self, message: Any) -> bool | None:
        return False


class CrashingDeliverer:
    """What escapes a service unexpectedly, with a recipient in its text."""

    def deliver(self, outbox_id: int) -> Any:
        raise RuntimeError(f"could not reach {CANARY_ADDRESS}")


def _letter_for_the_canary(rt: Runtime) -> int:
    school = {"source": "2A", "organisation": "Test Primary", "name": CANARY_NAME, "email": CANARY_ADDRESS}
    report = import_events(
        rt, referral("C1", "2026-11-03T08:00:00+00:00", referrer=school), now=NOW.isoformat()
    )
    assert report.ok, report.rejected
    [outbox_id] = sweeping.sweep(rt, SYSTEM, NOW).to_deliver
    return int(outbox_id)


def test_a_refused_delivery_logs_its_type_and_id_not_its_text(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    outbox_id = _letter_for_the_canary(runtime)
    runtime.channels["file"] = RefusingChannel()  # type: ignore[assignment]
    caplog.set_level(logging.DEBUG)
    assert sweeping.deliver(runtime, SYSTEM, outbox_id) == "failed"
    assert f"outbox {outbox_id}" in caplog.text and "PermanentDeliveryError" in caplog.text
    assert CANARY_ADDRESS not in caplog.text and CANARY_NAME not in caplog.text


def test_an_error_escaping_a_task_is_raised_and_logged_without_its_text(
    runtime: Runtime, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    outbox_id = _letter_for_the_canary(runtime)
    runtime.__dict__["_deliverer"] = CrashingDeliverer()  # the runtime's cached deliverer
    monkeypatch.setattr(task_runtime, "_runtime", runtime)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(jobs.TaskFailed) as raised:
        jobs.deliver(outbox_id)
    assert str(raised.value) == f"deliver outbox {outbox_id} failed (RuntimeError)"
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert f"deliver outbox {outbox_id} failed (RuntimeError)" in caplog.text
    assert CANARY_ADDRESS not in caplog.text


# Files: readable by their owner only.


def test_the_sqlite_database_and_its_journal_are_the_owners_only(runtime: Runtime, tmp_path: Path) -> None:
    if runtime.db.dialect != "sqlite":
        pytest.skip("PostgreSQL keeps its own files")
    import_events(runtime, referral("C1", "2026-11-03T08:00:00+00:00"), now=NOW.isoformat())
    files = sorted(tmp_path.glob("caseloop.db*"))
    assert {p.name for p in files} >= {"caseloop.db", "caseloop.db-wal", "caseloop.db-shm"}
    assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}


def email() -> OutgoingEmail:
    return OutgoingEmail(
        to=CANARY_ADDRESS,
        subject="Your referral",
        text=f"Dear {CANARY_NAME}",
        html=f"<p>Dear {CANARY_NAME}</p>",
        headers={OUTBOX_ID_HEADER: "7"},
        message_id="<letter.7@caseloop>",
    )


def test_emails_letters_batches_and_the_pdf_cache_are_the_owners_only(tmp_path: Path) -> None:
    FileChannel(tmp_path / "outbox", "caseloop@council.example").send(email(), lambda: None)
    [eml] = list((tmp_path / "outbox").iterdir())
    assert (eml.suffix, mode(eml), mode(tmp_path / "outbox")) == (".eml", 0o600, 0o700)

    html = f"<html lang='en'><head><title>Letter</title></head><body><p>{CANARY_NAME}</p></body></html>"
    pdf = render_pdf(html, tmp_path / "pdf-cache")
    [cached] = list((tmp_path / "pdf-cache").iterdir())
    assert (mode(cached), mode(tmp_path / "pdf-cache")) == (0o600, 0o700)

    printing = PrintChannel(tmp_path / "print")
    letter = OutgoingLetter(
        key="7",
        reference="letter:C1:family_decision:P1",
        recipient_name=CANARY_NAME,
        address_lines=("1 Canary Street", "Town"),
        subject="Our decision",
        text=f"Dear {CANARY_NAME}",
        html=html,
        pdf=pdf,
    )
    printing.send(letter, lambda: None)
    [pending] = list((tmp_path / "print" / "pending").iterdir())
    assert mode(pending) == 0o600
    batch = make_batch(tmp_path / "print", date(2026, 11, 3))
    assert batch is not None
    made = [p for p in (tmp_path / "print").rglob("*") if not p.name.startswith(".")]
    files = {str(p.relative_to(tmp_path)): mode(p) for p in made if p.is_file()}
    folders = {str(p.relative_to(tmp_path)): mode(p) for p in made if p.is_dir()}
    assert files and set(files.values()) == {0o600}, files
    assert folders and set(folders.values()) == {0o700}, folders


# Links: the case reference URL-encoded.


def test_a_digest_links_to_the_case_with_its_reference_url_encoded(runtime: Runtime, tmp_path: Path) -> None:
    runtime.channels["file"] = FileChannel(tmp_path / "outbox", runtime.settings.mail_from)
    import_staff(runtime)
    ref = "C/1 #2?x"
    events = [
        referral(ref, "2026-11-02T09:00:00+00:00", source="1A", referrer={"source": "1A"}),
        event("worker.allocated", ref, "2026-11-02T09:00:00+00:00", worker="W1"),
    ]
    assert import_events(runtime, *events, now="2026-11-02T09:30:00+00:00").ok
    report = sweeping.sweep(runtime, SYSTEM, datetime(2026, 11, 4, 10, 0, tzinfo=UTC))
    assert report.to_deliver
    for outbox_id in report.to_deliver:
        runtime.deliverer().deliver(outbox_id)
    mails = [
        message_from_bytes(p.read_bytes(), policy=policy.default) for p in (tmp_path / "outbox").glob("*.eml")
    ]
    texts = [m.get_body(preferencelist=("plain",)).get_content() for m in mails]  # type: ignore[union-attr]
    assert any("http://localhost:8000/cases/C%2F1%20%232%3Fx" in t for t in texts), texts
    assert not any("/cases/C/1" in t for t in texts)
