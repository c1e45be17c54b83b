"""Letters delivered for real (issue 4, part 6), on SQLite and PostgreSQL: a real SMTP server
(aiosmtpd on 127.0.0.1), GOV.UK Notify's official client against a local Notify server
(tests/support/fake_notify.py), and the print channel's daily batch read back with pypdf. A letter
that fails or comes back becomes a task for the worker (the ``failed_letter`` clock).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from config.wiring import Runtime
from messaging.channels.printing import make_batch
from services.casework import record_duty_done
from services.people import identify
from tests.factories import (
    MovableClock,
    SmtpRecorder,
    approve,
    audit_of,
    case_view,
    clocks_by_name,
    event,
    front_door_staff,
    import_events,
    import_staff,
    letter_of,
    letter_runtime,
    letters_of,
    person,
    referral,
    smtp_server,
    sweep,
    sweep_and_deliver,
)
from tests.support.fake_notify import FakeNotify

NOW = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)  # Tuesday, office hours
TEMPLATE = "5a2f1c2e-7d7e-4c1b-9f38-0c6f3b7f4d11"
COUNCIL = "Example Borough Council"
REFERRER = "ref@school.example"


def at(hhmm: str, day: int = 3) -> str:
    return f"2026-11-{day:02d}T{hhmm}:00+00:00"


@pytest.fixture
def build(database_url: str, tmp_path: Path) -> Iterator[Callable[..., Runtime]]:
    """Runtimes on one migrated database, their channels chosen by the settings given."""
    made: list[Runtime] = []

    def make(**settings: Any) -> Runtime:
        made.append(letter_runtime(database_url, tmp_path / "var", MovableClock(NOW), **settings))
        return made[-1]

    yield make
    for rt in made:
        rt.close()


@pytest.fixture
def notify() -> Iterator[FakeNotify]:
    with FakeNotify(email_templates=(TEMPLATE,)) as fake:
        yield fake


def with_notify(build: Callable[..., Runtime], notify: FakeNotify) -> Runtime:
    return build(
        notify_api_key=notify.api_key, notify_base_url=notify.base_url, notify_email_template_id=TEMPLATE
    )


def take(rt: Runtime, *events: dict[str, Any]) -> None:
    report = import_events(rt, *events, now=NOW.isoformat())
    assert report.ok, report.rejected


def nfa_decision(*people: dict[str, Any], day: int = 3, **fields: Any) -> list[dict[str, Any]]:
    return [
        referral("C1", at("08:00", day), id="r1", household=list(people), **fields),
        event("decision.made", "C1", at("08:10", day), id="d1", outcome="nfa"),
    ]


def clock(rt: Runtime, name: str) -> dict[str, Any] | None:
    return clocks_by_name(rt, "C1", (NOW + timedelta(hours=3)).isoformat()).get(name)


def body(mail: Any) -> str:
    return str(mail.get_body(preferencelist=("plain",)).get_content())


def test_emailed_letters_are_sent_once_through_a_real_smtp_server(build: Callable[..., Runtime]) -> None:
    handler = SmtpRecorder()
    with smtp_server(handler) as url:
        rt = build(smtp_url=url)
        take(rt, *nfa_decision(person("P1", preferred_channel="email", email="p1@family.example")))
        ids = [m.id for m in letters_of(rt, "C1")]
        assert sweep_and_deliver(rt, NOW) == dict.fromkeys(ids, "sent")
        assert sweep_and_deliver(rt, NOW + timedelta(minutes=30)) == {}
    sent = letters_of(rt, "C1")
    assert [(m.kind, m.channel, m.status, m.provider_ref, m.template_version) for m in sent] == [
        ("referrer_acknowledgement", "smtp", "sent", f"<letter.{ids[0]}@caseloop>", 2),
        ("referrer_outcome", "smtp", "sent", f"<letter.{ids[1]}@caseloop>", 3),  # its wording was revised
        ("family_decision", "smtp", "sent", f"<letter.{ids[2]}@caseloop>", 2),
    ]
    assert len(handler.received) == 3
    assert [m["Subject"] for m in handler.to(REFERRER)] == [
        "We have received your referral (our reference C1)",
        "Our decision about your referral (our reference C1)",
    ]
    [family] = handler.to("p1@family.example")
    assert family["Subject"] == "Our decision about the help your family needs (our reference C1)"
    assert "Dear Parent Example," in body(family) and COUNCIL in body(family)
    assert [
        clock(rt, n)["status"]
        for n in (
            "referrer_acknowledgement",
            "referrer_outcome",  # type: ignore[index]
            "family_decision",
        )
    ] == ["met", "met", "met"]


def test_letters_go_through_the_notify_client_as_emails_and_precompiled_pdfs(
    build: Callable[..., Runtime], notify: FakeNotify
) -> None:
    rt = with_notify(build, notify)
    take(rt, *nfa_decision(person("P1", name="Posted Parent", address="4 Post Lane, Letterton, LT1 1AA")))
    assert [m.channel for m in letters_of(rt, "C1")] == ["notify_email", "notify_email", "notify_letter"]
    ids = [m.id for m in letters_of(rt, "C1")]
    assert sweep_and_deliver(rt, NOW) == dict.fromkeys(ids, "sent")
    emails = notify.of_type("email")
    assert [(e.email_address, e.reference, e.template_id, e.subject) for e in emails] == [
        (
            REFERRER,
            "referrer_acknowledgement:r1:referrer",
            TEMPLATE,
            "We have received your referral (our reference C1)",
        ),
        (
            REFERRER,
            "referrer_outcome:d1:referrer",
            TEMPLATE,
            "Our decision about your referral (our reference C1)",
        ),
    ]
    assert "Dear Referrer Example," in emails[1].body
    [posted] = notify.of_type("letter")
    assert posted.reference == "family_decision:d1:P1"
    text = " ".join(" ".join(p.extract_text().split()) for p in PdfReader(BytesIO(posted.pdf)).pages)
    for expected in (COUNCIL, "Posted Parent", "4 Post Lane", "Letterton", "LT1 1AA"):
        assert expected in text
    assert [m.provider_ref for m in letters_of(rt, "C1")] == [emails[0].id, emails[1].id, posted.id]
    assert clock(rt, "family_decision")["status"] == "met"  # type: ignore[index]


def test_posted_letters_are_gathered_into_one_batch_pdf(build: Callable[..., Runtime]) -> None:
    rt = build()
    one = person("P1", name="Posted Parent One", address="1 First Street, Oneton, ON1 1AA")
    two = person("P2", name="Posted Parent Two", address="2 Second Road, Twoton, TW2 2BB")
    # Decided yesterday, closed today: a decision and a closing letter each.
    take(rt, *nfa_decision(one, two, day=2), event("case.closed", "C1", at("08:30"), id="c1", reason="NFA"))
    posted = [m.id for m in letters_of(rt, "C1") if m.channel == "print"]
    assert len(posted) == 4  # a decision and a closing letter to each
    outcomes = sweep_and_deliver(rt, NOW)
    assert [outcomes[i] for i in posted] == ["sent"] * 4
    refs = [m.provider_ref for m in letters_of(rt, "C1") if m.id in posted]
    assert refs == [f"outbox-{i}.pdf" for i in posted]
    batch = make_batch(rt.settings.print_dir, date(2026, 11, 3))
    assert batch == rt.settings.print_dir / "batches" / "2026-11-03.pdf"
    assert make_batch(rt.settings.print_dir, date(2026, 11, 3)) is None  # nothing printed twice
    manifest = json.loads(batch.with_suffix(".json").read_text())
    assert [e["key"] for e in manifest["letters"]] == [str(i) for i in posted]
    pages = [" ".join(p.extract_text().split()) for p in PdfReader(batch).pages]
    assert len(pages) == manifest["total_pages"]
    for entry, person_ in zip(manifest["letters"], (one, two, one, two), strict=True):
        first = entry["first_page"] - 1
        letter_text = " ".join(pages[first : first + entry["pages"]])
        other = two if person_ is one else one
        assert COUNCIL in letter_text and f"Dear {person_['name']}," in letter_text
        assert person_["address"].split(",")[0] in letter_text
        assert other["name"] not in letter_text and other["address"].split(",")[0] not in letter_text


def test_a_held_closing_letter_is_sent_exactly_once_after_approval(build: Callable[..., Runtime]) -> None:
    survivor = "survivor@family.example"
    handler = SmtpRecorder()
    with smtp_server(handler) as url:
        rt = build(smtp_url=url)
        import_staff(rt)
        referred, decided = nfa_decision(
            person("P1", preferred_channel="email", email=survivor), day=2, flags=["domestic_abuse"]
        )
        take(
            rt,
            referred,
            event("worker.allocated", "C1", at("08:05", 2), id="w1", worker="W1"),
            decided,
            event("case.closed", "C1", at("08:30"), id="c1", reason="NFA"),
        )
        closing = letter_of(rt, "C1", "family_closing_letter", "P1").id
        assert closing not in sweep_and_deliver(rt, NOW)
        assert handler.to(survivor) == []
        approve(rt, closing, "W1", "spoke to her: email is safe", NOW + timedelta(minutes=5))
        assert sweep_and_deliver(rt, NOW + timedelta(minutes=6)).get(closing) == "sent"
        assert closing not in sweep_and_deliver(rt, NOW + timedelta(minutes=40))
        assert rt.deliverer().deliver(closing) == "skipped: already sent"
    [mail] = handler.to(survivor)  # the decision letter, still held, never went
    assert mail["Subject"] == "We have closed our work with your family (our reference C1)"
    assert audit_of(rt, closing) == [
        ("held", "caseloop", "domestic abuse: a worker must review every letter"),
        ("approved", "W1", "spoke to her: email is safe"),
        ("sent", "caseloop", "smtp attempt 1"),
    ]
    assert letter_of(rt, "C1", "family_decision", "P1").status == "held"
    assert clock(rt, "family_closing_letter")["status"] == "met"  # type: ignore[index]


def test_a_letter_refused_with_550_fails_and_becomes_a_task(build: Callable[..., Runtime]) -> None:
    handler = SmtpRecorder(rcpt="550 5.1.1 No such user")
    with smtp_server(handler) as url:
        rt = build(smtp_url=url)
        take(rt, referral("C1", at("08:00"), id="r1"))
        ack = letter_of(rt, "C1", "referrer_acknowledgement", "referrer").id
        assert sweep_and_deliver(rt, NOW) == {ack: "failed"}
        assert sweep_and_deliver(rt, NOW + timedelta(minutes=30)) == {}  # a 5xx is never retried
    failed = letter_of(rt, "C1", "referrer_acknowledgement", "referrer")
    assert (failed.status, failed.attempts, failed.last_error) == (
        "failed",
        1,
        "SMTP server refused the recipient (550)",
    )
    assert handler.received == []
    task = clock(rt, "failed_letter")
    assert task is not None
    assert (task["status"], task["started"], task["due"]) == ("running", "2026-11-03", "2026-11-05")
    assert clock(rt, "referrer_acknowledgement")["status"] == "running"  # type: ignore[index]
    # The team manager (the case is not allocated) phones the referrer: the task and the duty
    # can both be recorded done.
    import_staff(rt, *front_door_staff())
    for duty in ("failed_letter", "referrer_acknowledgement"):
        assert record_duty_done(rt, identify(rt, "TM1"), "C1", duty, NOW + timedelta(hours=1), how="phone")
    assert clock(rt, "failed_letter")["status"] == "met"  # type: ignore[index]
    assert clock(rt, "referrer_acknowledgement")["status"] == "met"  # type: ignore[index]


def test_a_letter_notify_reports_returned_fails_and_becomes_a_task(
    build: Callable[..., Runtime], notify: FakeNotify
) -> None:
    rt = with_notify(build, notify)
    take(rt, *nfa_decision(person("P1")))
    posted = letter_of(rt, "C1", "family_decision", "P1").id
    assert sweep_and_deliver(rt, NOW)[posted] == "sent"
    assert clock(rt, "failed_letter") is None
    [item] = notify.of_type("letter")
    notify.set_status(item.id, "returned-letter")
    rt.clock.now = NOW + timedelta(hours=1)  # type: ignore[attr-defined]
    assert sweep(rt, NOW + timedelta(hours=1)).statuses == {"checked": 3, "failed": 1}
    returned = letter_of(rt, "C1", "family_decision", "P1")
    assert (returned.status, returned.last_error, returned.payload["delivery_status"]) == (
        "failed",
        "the provider reported: returned-letter",
        "returned-letter",
    )
    assert [a for a, _, _ in audit_of(rt, posted)] == ["sent", "failed"]
    task = clock(rt, "failed_letter")
    assert task is not None and (task["status"], task["due"]) == ("running", "2026-11-05")
    rt.clock.now = NOW + timedelta(hours=2)  # type: ignore[attr-defined]
    assert sweep(rt, NOW + timedelta(hours=2)).statuses == {"checked": 2, "failed": 0}
    assert [c["name"] for c in case_view(rt, "C1", NOW.isoformat())["clocks"]].count("failed_letter") == 1
    assert [m.status for m in letters_of(rt, "C1")] == ["sent", "sent", "failed"]
