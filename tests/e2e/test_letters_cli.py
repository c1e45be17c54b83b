"""The letters CLI (issue 4, part 7) through the real Typer app, on SQLite and PostgreSQL.

Cases and staff go in through ``caseloop events import`` and ``caseloop staff import``; letters are
delivered by the runtime's sweep and deliverer (the workers' code) on the same database and folder.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from typer.testing import CliRunner, Result

from cli.main import app
from config.wiring import Runtime
from tests.factories import (
    MovableClock,
    audit_of,
    event,
    jsonl,
    letter_of,
    letter_runtime,
    letters_of,
    person,
    referral,
    staff_csv,
    staff_row,
    sweep_and_deliver,
)

NOW = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
COUNCIL = "Example Borough Council"
DA_HOLD = "domestic abuse: a worker must review every letter"
SHOWN = person("P1", name="Shown Parent", address="7 Shown Street, Showtown, SH7 7HH")
NEIGHBOUR = {"source": "1B", "name": "Nosy Neighbour", "address": "8 Next Door, Showtown"}


def at(hhmm: str, day: int = 3) -> str:
    return f"2026-11-{day:02d}T{hhmm}:00+00:00"


class Cli:
    def __init__(self, url: str, var: Path) -> None:
        self.env = {"CASELOOP_DATABASE_URL": url, "CASELOOP_VAR_DIR": str(var), "COLUMNS": "200"}
        self.var, self.runner = var, CliRunner()

    def __call__(self, *args: str) -> Result:
        return self.runner.invoke(app, ["--now", NOW.isoformat(), *args], env=self.env)

    def ok(self, *args: str) -> Result:
        result = self(*args)
        assert result.exit_code == 0, result.output
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json").stdout)


def closed_case(ref: str, referrer: dict[str, Any] | None = None, **fields: Any) -> list[dict[str, Any]]:
    if referrer is not None:
        fields["referrer"] = referrer
    # Decided yesterday and closed today: the household gets a decision and a closing letter.
    referred = referral(ref, at("08:00", 2), id=f"{ref}-r", household=[SHOWN], **fields)
    return [
        referred,
        event("worker.allocated", ref, at("08:05", 2), id=f"{ref}-w", worker="W1"),
        event("decision.made", ref, at("08:10", 2), id=f"{ref}-d", outcome="nfa"),
        event("case.closed", ref, at("08:30"), id=f"{ref}-c", reason="NFA"),
    ]


@pytest.fixture
def cli(database_url: str, tmp_path: Path) -> Cli:
    cli = Cli(database_url, tmp_path / "var")
    cli.ok("db", "upgrade")
    (tmp_path / "staff.csv").write_text(
        "".join(staff_csv(staff_row("SM1", "service_manager"), staff_row("W1"), staff_row("X1", team="east")))
    )
    cli.ok("staff", "import", str(tmp_path / "staff.csv"))
    events = [*closed_case("C1", flags=["domestic_abuse"]), *closed_case("C2", NEIGHBOUR)]
    (tmp_path / "events.jsonl").write_text("".join(jsonl(*events)))
    assert cli.ok("events", "import", str(tmp_path / "events.jsonl")).stdout == (
        "accepted 8, duplicate 0, rejected 0\n"
    )
    return cli


@pytest.fixture
def rt(cli: Cli, database_url: str) -> Iterator[Runtime]:
    runtime = letter_runtime(database_url, cli.var, MovableClock(NOW))
    yield runtime
    runtime.close()


def pdf_text(path: Path) -> str:
    return " ".join(" ".join(page.extract_text().split()) for page in PdfReader(path).pages)


def test_outbox_show_renders_each_format_and_sends_nothing(cli: Cli, rt: Runtime, tmp_path: Path) -> None:
    closing = letter_of(rt, "C1", "family_closing_letter", "P1").id
    shown = cli.ok("outbox", "show", str(closing))
    assert shown.stderr == (
        f"outbox {closing}: family_closing_letter to family P1 by print, held ({DA_HOLD}), rendered now\n"
    )
    for expected in ("Dear Shown Parent,", COUNCIL, "7 Shown Street"):
        assert expected in shown.stdout
    html = cli.ok("outbox", "show", str(closing), "--format", "html", "--output", str(tmp_path / "l.html"))
    assert html.stdout == "" and html.stderr.endswith(f"wrote {tmp_path / 'l.html'}\n")
    page = (tmp_path / "l.html").read_text()
    assert page.lstrip().lower().startswith("<!doctype html>") and "Dear Shown Parent," in page
    cli.ok("outbox", "show", str(closing), "--format", "pdf", "--output", str(tmp_path / "l.pdf"))
    text = pdf_text(tmp_path / "l.pdf")
    for expected in (COUNCIL, "Dear Shown Parent,", "7 Shown Street", "SH7 7HH", "We have finished our work"):
        assert expected in text
    no_file = cli("outbox", "show", str(closing), "--format", "pdf")
    assert (no_file.exit_code, no_file.stderr.splitlines()[-1]) == (2, "error: a PDF needs --output FILE")
    queued = letter_of(rt, "C2", "family_closing_letter", "P1").id
    cli.ok("outbox", "show", str(queued))
    after = {m.id: m for m in letters_of(rt, "C1") + letters_of(rt, "C2")}
    shown_row = after[closing]
    assert (shown_row.status, shown_row.attempts, shown_row.template_version) == ("held", 0, None)
    assert (after[queued].status, after[queued].attempts, after[queued].dispatched_at) == ("queued", 0, None)
    # Showing changes no status, but every view is recorded, with who and in what form (issue 9).
    assert audit_of(rt, closing) == [
        ("held", "caseloop", DA_HOLD),
        ("viewed", "caseloop", "as text"),
        ("viewed", "caseloop", "as html"),
        ("viewed", "caseloop", "as pdf"),
    ]
    assert audit_of(rt, queued) == [("viewed", "caseloop", "as text")]
    assert not (cli.var / "print").exists() and not (cli.var / "outbox").exists()


def test_held_letters_are_approved_or_rejected_from_the_cli(cli: Cli, rt: Runtime) -> None:
    ids = {m.kind: m.id for m in letters_of(rt, "C1")}
    assert sorted(r["id"] for r in cli.json("outbox", "list", "--status", "held")) == sorted(ids.values())
    closing, decision = ids["family_closing_letter"], ids["family_decision"]
    refused = cli("outbox", "approve", str(closing), "--by", "X1")  # X1 may not see the case at all
    assert (refused.exit_code, refused.stderr) == (2, f"error: no outbox message {closing}\n")
    assert cli("outbox", "reject", str(decision), "--by", "W1").exit_code == 2  # a reason is required
    approved = cli.ok("outbox", "approve", str(closing), "--by", "W1", "--note", "she moved; post is safe")
    assert approved.stdout == f"approved outbox {closing}; it is queued\n"
    rejected = cli.ok("outbox", "reject", str(decision), "--by", "SM1", "--reason", "he still reads her post")
    assert rejected.stdout == f"rejected outbox {decision}\n"
    again = cli("outbox", "approve", str(closing), "--by", "W1")
    assert (again.exit_code, again.stderr) == (
        2,
        f"error: outbox {closing} is queued, not held: only held letters are reviewed\n",
    )
    held = cli.json("outbox", "list", "--status", "held")
    assert sorted(r["id"] for r in held) == sorted(set(ids.values()) - {closing, decision})
    delivered = sweep_and_deliver(rt, NOW)
    assert delivered.get(closing) == "sent" and decision not in delivered
    assert [r["id"] for r in cli.json("outbox", "list", "--status", "rejected")] == [decision]
    clocks = {c["name"]: c["status"] for c in cli.json("case", "show", "C1")["clocks"]}
    assert (clocks["family_closing_letter"], clocks["family_decision"]) == ("met", "running")
    assert audit_of(rt, closing) == [
        ("held", "caseloop", DA_HOLD),
        ("approved", "W1", "she moved; post is safe"),
        ("sent", "caseloop", "print attempt 1"),
    ]
    assert audit_of(rt, decision) == [
        ("held", "caseloop", DA_HOLD),
        ("rejected", "SM1", "he still reads her post"),
    ]


def test_templates_list_check_and_preview(cli: Cli, rt: Runtime) -> None:
    listed = cli.ok("templates", "list").stdout.splitlines()
    assert listed[0].split() == ["key", "version", "audience", "channels", "description"]
    rows = {line.split()[0]: line.split()[1:4] for line in listed[1:]}
    assert rows == {
        "family_closing_letter": ["2", "family", "email,post"],
        "family_closing_letter_easy_read": ["2", "family", "email,post"],
        "family_decision": ["2", "family", "email,post"],
        "family_decision_easy_read": ["1", "family", "email,post"],
        "referrer_acknowledgement": ["2", "referrer", "email,post"],
        "referrer_closure_notice": ["1", "referrer", "email,post"],
        "referrer_outcome": ["3", "referrer", "email,post"],  # its wording was revised
        "school_involvement_ended": ["1", "school", "email,post"],
        "school_worker_involved": ["2", "school", "email,post"],
    }
    assert cli.ok("templates", "check").stdout == "9 templates checked: no problems\n"
    before = len(letters_of(rt, "C2"))
    preview = cli.ok("templates", "preview", "family_closing_letter", "--case", "C2").stdout
    assert "Dear Shown Parent," in preview and "7 Shown Street" in preview
    assert "Nosy Neighbour" not in preview  # a family letter never names a member of the public
    ack = cli.ok("templates", "preview", "referrer_acknowledgement", "--case", "C2").stdout
    assert "Dear Nosy Neighbour," in ack and "we cannot tell you what we decide" in ack
    outcome = cli("templates", "preview", "referrer_outcome", "--case", "C2")
    assert (outcome.exit_code, outcome.stderr) == (
        2,
        "error: template referrer_outcome: field referral.professional must be one of: True\n",
    )
    missing = cli("templates", "preview", "family_decision", "--case", "NOPE")
    assert (missing.exit_code, missing.stderr) == (2, "error: no case 'NOPE'\n")
    assert len(letters_of(rt, "C2")) == before


def test_print_batch_gathers_the_posted_letters_into_one_pdf(cli: Cli, rt: Runtime) -> None:
    posted = [m.id for m in letters_of(rt, "C2")]
    assert [m.channel for m in letters_of(rt, "C2")] == ["print"] * 3  # the neighbour gave an address only
    assert cli.ok("print", "batch", "--date", "2026-11-03").stdout == "no letters are waiting to be printed\n"
    for bad in ("2026-13-01", "tomorrow", "3/11/2026"):
        refused = cli("print", "batch", "--date", bad)
        assert (refused.exit_code, refused.stderr) == (
            2,
            f"error: --date: {bad!r} is not a date; give it as YYYY-MM-DD\n",
        )
        assert "Traceback" not in refused.output
    delivered = sweep_and_deliver(rt, NOW)  # with the worker's reminder digest
    assert {i: delivered[i] for i in posted} == dict.fromkeys(posted, "sent")
    batch = cli.var / "print" / "batches" / "2026-11-03.pdf"
    assert cli.ok("print", "batch", "--date", "2026-11-03").stdout == f"print batch: {batch}\n"
    text = pdf_text(batch)
    for expected in (COUNCIL, "Dear Shown Parent,", "Dear Nosy Neighbour,", "8 Next Door"):
        assert expected in text
    assert [e["key"] for e in json.loads(batch.with_suffix(".json").read_text())["letters"]] == [
        str(i) for i in posted
    ]
    assert cli.ok("print", "batch", "--date", "2026-11-03").stdout == "no letters are waiting to be printed\n"
