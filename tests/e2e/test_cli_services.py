"""The CLI over the service layer, on SQLite and PostgreSQL: ``events dismiss`` and ``duties done``.

Driven through the real Typer app (as tests/e2e/test_cli.py is); what the commands leave behind
is read back from the database and through the read commands.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import select
from typer.testing import CliRunner

from cli.main import app
from config.settings import Settings
from config.wiring import build_runtime
from messaging.outbox import OutboxAudit, OutboxMessage
from services import intake
from services.actors import SYSTEM
from tests.factories import event, front_door_staff, jsonl, person, referral, staff_csv, staff_row
from workflow.errors import Conflict, Invalid, NotFound
from workflow.model import Case, ReceivedEvent

NOW = "2026-11-03T10:00:00+00:00"  # Tuesday, office hours
LATER = "2026-11-03T11:00:00+00:00"


class Cli:
    def __init__(self, url: str, tmp_path: Path) -> None:
        self.url, self.tmp_path, self.runner = url, tmp_path, CliRunner()
        self.env = {"CASELOOP_DATABASE_URL": url, "CASELOOP_VAR_DIR": str(tmp_path / "var"), "COLUMNS": "200"}

    def __call__(self, *args: str, now: str = NOW) -> Result:
        return self.runner.invoke(app, ["--now", now, *args], env=self.env)

    def ok(self, *args: str, now: str = NOW) -> Result:
        result = self(*args, now=now)
        assert result.exit_code == 0, (args, result.output)
        return result

    def json(self, *args: str, now: str = NOW) -> Any:
        return json.loads(self.ok(*args, "--json", now=now).stdout)

    def file(self, name: str, *events: dict[str, Any]) -> str:
        path = self.tmp_path / name
        path.write_text("".join(jsonl(*events)), encoding="utf-8")
        return str(path)

    def rows(self, model: Any, *where: Any) -> list[Any]:
        rt = build_runtime(Settings(database_url=self.url, var_dir=self.tmp_path / "var"))
        try:
            with rt.reading() as uow:
                return list(uow.session.scalars(select(model).where(*where).order_by(model.id)))
        finally:
            rt.close()


@pytest.fixture
def cli(database_url: str, tmp_path: Path) -> Cli:
    cli = Cli(database_url, tmp_path)
    cli.ok("db", "upgrade")
    staff = tmp_path / "staff.csv"
    staff.write_text("".join(staff_csv(*front_door_staff(), staff_row("X1", team="east"))), encoding="utf-8")
    cli.ok("staff", "import", str(staff))
    return cli


def refused(result: Result) -> str:
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    return result.stderr


# -- events dismiss ----------------------------------------------------------------------------


def test_a_dismissed_event_is_kept_with_who_when_and_why_and_never_listed_or_retried(cli: Cli) -> None:
    early = cli.file("early.jsonl", event("decision.made", "C9", NOW, id="d9", outcome="nfa"))
    assert cli("events", "import", early).exit_code == 1  # C9 is not known yet: rejected, kept
    [row] = cli.json("events", "rejected")
    assert (row["event"], row["kind"], row["retryable"]) == ("d9", "unknown_case", True)

    why = "sent to the wrong borough"
    done = cli.ok("events", "dismiss", str(row["id"]), "--by", "Jo Duty", "--reason", why, now=LATER)
    assert done.stdout == f"dismissed received event {row['id']}\n"
    [kept] = cli.rows(ReceivedEvent, ReceivedEvent.id == row["id"])
    assert (kept.status, kept.dismissed_by, kept.dismissal) == ("dismissed", "Jo Duty", why)
    assert kept.dismissed_at == datetime.fromisoformat(LATER)
    assert (kept.event_id, kept.rejection_kind) == ("d9", "unknown_case")  # the rejection itself is kept

    assert cli.ok("events", "rejected").stdout.strip() == "no rejected events"
    assert cli.json("events", "rejected") == []
    # The referral arrives: a retry could now take the decision, but a dismissed event is never retried.
    referred = cli.file("ref.jsonl", referral("C9", "2026-11-03T09:00:00+00:00", id="r9"))
    imported = cli.ok("events", "import", referred, now=LATER)
    assert imported.stdout.strip() == "accepted 1, duplicate 0, rejected 0"
    assert cli.ok("events", "retry", now=LATER).stdout.strip() == "accepted 0, still rejected 0"
    assert cli.json("case", "show", "C9", now=LATER)["state"] == "referral"  # the decision was not applied
    [still] = cli.rows(ReceivedEvent, ReceivedEvent.id == row["id"])
    assert (still.status, still.attempts) == ("dismissed", kept.attempts)
    # The same line sent again is a duplicate of the dismissed one: skipped, and not said to wait.
    again = cli.ok("events", "import", early, now=LATER)
    assert again.stdout.splitlines() == [
        "duplicate: line 1: event d9 was already received and dismissed; skipped",
        "accepted 0, duplicate 1, rejected 0",
    ]


def test_dismissing_needs_a_rejected_event_and_a_reason(cli: Cli) -> None:
    mixed = cli.file(
        "m.jsonl",
        referral("C1", "2026-11-03T08:00:00+00:00", id="r1"),
        event("decision.made", "C8", NOW, id="d8", outcome="nfa"),
    )
    assert cli("events", "import", mixed).exit_code == 1
    accepted, rejected = cli.rows(ReceivedEvent)
    assert (accepted.status, rejected.status) == ("accepted", "rejected")

    assert refused(cli("events", "dismiss", str(accepted.id), "--by", "Jo", "--reason", "noise")) == (
        f"error: received event {accepted.id} is accepted: only rejected events are dismissed\n"
    )
    for empty in ("", "   "):
        assert refused(cli("events", "dismiss", str(rejected.id), "--by", "Jo", "--reason", empty)) == (
            "error: a dismissal needs a reason\n"
        )
    assert refused(cli("events", "dismiss", "99999", "--by", "Jo", "--reason", "noise")) == (
        "error: no received event 99999\n"
    )
    assert [r.status for r in cli.rows(ReceivedEvent)] == ["accepted", "rejected"]  # nothing changed

    cli.ok("events", "dismiss", str(rejected.id), "--by", "Jo", "--reason", "a test line")
    assert refused(cli("events", "dismiss", str(rejected.id), "--by", "Jo", "--reason", "again")) == (
        f"error: received event {rejected.id} is dismissed: only rejected events are dismissed\n"
    )

    # The same answers, typed, from the service the command calls.
    rt = build_runtime(Settings(database_url=cli.url, var_dir=cli.tmp_path / "var"))
    try:
        for received, why, error in (
            (accepted.id, "noise", Conflict),
            (rejected.id, "again", Conflict),
            (rejected.id, " ", Invalid),
            (99999, "noise", NotFound),
        ):
            with pytest.raises(error):
                intake.dismiss_rejected(rt, SYSTEM, received, "Jo", why)
    finally:
        rt.close()


# -- duties done -------------------------------------------------------------------------------


def clock(cli: Cli, case: str, name: str) -> dict[str, Any]:
    [found] = [c for c in cli.json("case", "show", case, now=LATER)["clocks"] if c["name"] == name]
    return dict(found)


def letters(cli: Cli, case: str, duty: str) -> list[OutboxMessage]:
    [case_id] = [c.id for c in cli.rows(Case, Case.ref == case)]
    return cli.rows(OutboxMessage, OutboxMessage.case_id == case_id, OutboxMessage.duty == duty)


def test_a_duty_done_by_hand_stops_its_clock_and_cancels_its_unsent_letters(cli: Cli) -> None:
    events = cli.file(
        "e.jsonl",
        referral("C1", "2026-11-03T08:00:00+00:00", id="r1"),
        # C2's letters are all held for review (domestic abuse): a held letter is cancelled too.
        referral("C2", "2026-11-03T08:00:00+00:00", id="r2", flags=["domestic_abuse"], household=[person()]),
        # Both allocated to W1, who records the duties: a social worker acts on their own cases.
        event("worker.allocated", "C1", "2026-11-03T08:05:00+00:00", id="w1", worker="W1"),
        event("worker.allocated", "C2", "2026-11-03T08:05:00+00:00", id="w2", worker="W1"),
    )
    cli.ok("events", "import", events)
    duty = "referrer_acknowledgement"
    assert [m.status for m in letters(cli, "C1", duty)] == ["queued"]
    assert [m.status for m in letters(cli, "C2", duty)] == ["held"]
    assert clock(cli, "C1", duty)["status"] == "running"

    for case in ("C1", "C2"):
        done = cli.ok("duties", "done", case, duty, "--by", "W1", now=LATER)
        assert done.stdout == f"recorded {duty} on {case} as done\n"
        assert clock(cli, case, duty)["status"] == "met"
        [letter] = letters(cli, case, duty)
        assert letter.status == "cancelled"
        audit = cli.rows(OutboxAudit, OutboxAudit.outbox_id == letter.id)
        assert audit[-1].action == "cancelled"
        by_hand = (ReceivedEvent.type == "duty.fulfilled", ReceivedEvent.case_ref == case)
        [recorded] = cli.rows(ReceivedEvent, *by_hand)
        assert (recorded.status, recorded.source) == ("accepted", "staff:W1")
    # Nothing is left to go: the next tick sends neither letter.
    cli.ok("tick", now=LATER)
    assert {m.status for case in ("C1", "C2") for m in letters(cli, case, duty)} == {"cancelled"}

    again = cli.ok("duties", "done", "C1", duty, "--by", "TM1", now=LATER)
    assert again.stdout == f"{duty} on C1 was already recorded\n"
    # Recorded again on a later day (another time, so another event): still already recorded.
    later = cli.ok("duties", "done", "C1", duty, "--by", "TM1", now="2026-11-20T10:00:00+00:00")
    assert later.stdout == f"{duty} on C1 was already recorded\n"
    assert cli("events", "rejected").stdout.strip() == "no rejected events"


def test_duties_done_refuses_an_unknown_duty_an_unseen_case_and_an_unknown_person(cli: Cli) -> None:
    cli.ok("events", "import", cli.file("e.jsonl", referral("C1", "2026-11-03T08:00:00+00:00", id="r1")))
    assert refused(cli("duties", "done", "C1", "phoned_the_gp", "--by", "W1")) == (
        "error: no duty 'phoned_the_gp' in the policy\n"
    )
    # X1 is in another team: C1 is "no case", exactly as a case that does not exist.
    assert refused(cli("duties", "done", "C1", "referrer_acknowledgement", "--by", "X1")) == (
        "error: no case 'C1'\n"
    )
    assert refused(cli("duties", "done", "C404", "referrer_acknowledgement", "--by", "X1")) == (
        "error: no case 'C404'\n"
    )
    assert refused(cli("duties", "done", "C1", "referrer_acknowledgement", "--by", "NOBODY")) == (
        "error: NOBODY is not a known member of staff\n"
    )
    assert clock(cli, "C1", "referrer_acknowledgement")["status"] == "running"
    assert [m.status for m in letters(cli, "C1", "referrer_acknowledgement")] == ["queued"]
    assert cli.rows(ReceivedEvent, ReceivedEvent.type == "duty.fulfilled") == []
