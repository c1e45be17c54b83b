"""Work for staff (issue 8, points 9 in part, 12 and 16), on SQLite and PostgreSQL.

- a professional referrer nobody can write to is a phone task for the worker, until `duty done`;
- reminders about cases of a team or worker the staff directory does not know go to the policy's
  fallback manager;
- digests say why each deadline is late and what to do, grouped by case, most urgent first;
- leavers get nothing from their leaving day, and their cases count as unallocated.

Staff: service manager SM1 over team manager TM1 over social workers W1 and W2 (team
front-door). Referrals on Mon 2 Nov 2026 start one-working-day clocks due Tue 3 Nov; November
2026 has no bank holidays.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result
from sqlalchemy import select
from typer.testing import CliRunner

from cli.main import app
from config.settings import DEFAULT_POLICY_FILE
from config.wiring import Runtime
from messaging.outbox import OutboxAudit, OutboxMessage
from services.actors import SYSTEM
from services.people import leave
from tests.factories import (
    MovableClock,
    SmtpRecorder,
    clocks_by_name,
    event,
    front_door_staff,
    history_of,
    import_events,
    import_staff,
    jsonl,
    letter_of,
    letter_runtime,
    letters_of,
    no_contact_referrer,
    referral,
    smtp_server,
    staff_csv,
    staff_row,
    sweep,
    sweep_and_deliver,
)
from workflow.errors import PolicyError
from workflow.policy import parse_policy
from workflow.reminders import ReminderItem

REFERRED = "2026-11-02T09:00:00+00:00"
EARLY = "2026-11-02T07:00:00+00:00"  # before office hours: letters go, digests wait
POLICE = {"source": "6", "organisation": "Borough Police", "name": "Officer Example"}
SCHOOL = {"source": "2A", "organisation": "Test Primary", "name": "Referrer Example"}


def at(day: str, hhmm: str = "10:00") -> datetime:
    """``hhmm`` UTC on ``day`` (GMT in November: local time too)."""
    return datetime.fromisoformat(f"{day}T{hhmm}:00+00:00")


def policy_file(tmp_path: Path, **reminders: Any) -> Path:
    """The shipped policy with these reminder settings, written where a runtime can read it."""
    data = yaml.safe_load(DEFAULT_POLICY_FILE.read_text(encoding="utf-8"))
    data["reminders"].update(reminders)
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def allocated(ref: str, worker: str, when: str = REFERRED) -> dict[str, Any]:
    return event("worker.allocated", ref, when, worker=worker)


class Cli:
    """The real Typer app on one database, a var folder of its own, and optionally a policy."""

    def __init__(self, url: str, tmp_path: Path, policy_path: Path | None = None) -> None:
        self.tmp_path, self.runner = tmp_path, CliRunner()
        self.env = {"CASELOOP_DATABASE_URL": url, "CASELOOP_VAR_DIR": str(tmp_path / "var"), "COLUMNS": "300"}
        if policy_path is not None:
            self.env["CASELOOP_POLICY_FILE"] = str(policy_path)

    def __call__(self, *args: str, now: datetime) -> Result:
        return self.runner.invoke(app, ["--now", now.isoformat(), *args], env=self.env)

    def ok(self, *args: str, now: datetime) -> Result:
        result = self(*args, now=now)
        assert result.exit_code == 0, (args, result.output)
        return result

    def json(self, *args: str, now: datetime) -> Any:
        return json.loads(self.ok(*args, "--json", now=now).stdout)

    def take(self, *events: dict[str, Any], now: datetime) -> None:
        path = self.tmp_path / "events.jsonl"
        path.write_text("".join(jsonl(*events)), encoding="utf-8")
        self.ok("events", "import", str(path), now=now)

    def staff(self, *rows: str, now: datetime) -> Result:
        path = self.tmp_path / "staff.csv"
        path.write_text("".join(staff_csv(*(rows or front_door_staff()))), encoding="utf-8")
        return self("staff", "import", str(path), now=now)

    def mails_to(self, address: str) -> list[EmailMessage]:
        found = []
        for path in sorted((self.tmp_path / "var" / "outbox").glob("*.eml")):
            mail = message_from_bytes(path.read_bytes(), policy=policy.default)
            if mail["To"] == address:
                found.append(mail)
        return found  # type: ignore[return-value]


def text_of(mail: Any) -> str:
    return str(mail.get_body(preferencelist=("plain",)).get_content())


@pytest.fixture
def cli(runtime: Runtime, tmp_path: Path) -> Cli:
    """A migrated database (the runtime fixture) with the front-door staff."""
    cli = Cli(runtime.settings.database_url, tmp_path)
    assert cli.staff(now=at("2026-11-02", "08:00")).exit_code == 0
    return cli


def items_of(rt: Runtime, day: str) -> list[tuple[str, str, str, str]]:
    """(clock, recipient, role, step) of the day's reminder items."""
    from workflow.model import ClockRow

    with rt.db.transaction() as session:
        rows = session.execute(
            select(ClockRow.name, ReminderItem.recipient, ReminderItem.recipient_role, ReminderItem.step)
            .join(ClockRow, ClockRow.id == ReminderItem.clock_id)
            .where(ReminderItem.for_date == date.fromisoformat(day))
        )
        return sorted(tuple(r) for r in rows)  # type: ignore[misc]


# -- 12: a professional nobody can write to is told by phone ---------------------------------------


def test_a_professional_referrer_with_no_email_or_address_is_a_phone_task_until_recorded_done(
    cli: Cli, runtime: Runtime
) -> None:
    duty = "referrer_acknowledgement"
    cli.take(referral("C1", REFERRED, referrer=POLICE), allocated("C1", "W1"), now=at("2026-11-02", "09:30"))
    # No letter can be made, but the duty is not cancelled: it stays owed, as the worker's task.
    assert [r.kind for r in letters_of(runtime, "C1")] == []
    assert clocks_by_name(runtime, "C1", "2026-11-02")[duty]["status"] == "running"
    [task] = history_of(runtime, "C1", "duty.by_hand")
    assert task.detail == {"duty": duty, "task": "tell them by phone"}
    assert history_of(runtime, "C1", "clock.cancelled") == []

    # Overdue on Wednesday: the queue and the worker's digest say why and what to do.
    wednesday = at("2026-11-04")
    [row] = [r for r in cli.json("queue", "overdue", "--as", "W1", now=wednesday) if r["clock"] == duty]
    why = "nobody to write to (no email or address): tell them by phone"
    assert (row["why"], row["reason"]) == ("by_hand", why)
    record = f"caseloop duty done C1 {duty} --by W1 --how phone"
    assert row["to_do"] == f"tell them by phone, then record it: {record}"
    assert cli.ok("tick", now=wednesday).stdout
    [digest] = cli.mails_to("w1@council.example")
    # The email points at the page where it is done, not at a command.
    assert "To do: tell them by phone, then record it on http://localhost:8000/my-work" in text_of(digest)

    # `duty done` needs to know how.
    missing = cli("duty", "done", "C1", duty, "--by", "W1", now=wednesday)
    assert missing.exit_code == 2 and "Missing option '--how'" in missing.output
    fax = cli("duty", "done", "C1", duty, "--by", "W1", "--how", "fax", now=wednesday)
    assert fax.exit_code == 2 and "'fax' is not one of" in fax.output
    done = cli.ok("duty", "done", "C1", duty, "--by", "W1", "--how", "phone", now=at("2026-11-04", "11:00"))
    assert done.stdout == f"recorded {duty} on C1 as done\n"
    assert clocks_by_name(runtime, "C1", "2026-11-04")[duty]["status"] == "met_late"
    [recorded] = history_of(runtime, "C1", "duty.done")
    assert recorded.detail == {"duty": duty, "how": "phone", "by": "W1"}
    assert duty not in {r["clock"] for r in cli.json("queue", "overdue", now=wednesday)}


def test_the_old_duties_done_still_works_but_is_not_listed(cli: Cli, runtime: Runtime) -> None:
    cli.take(referral("C1", REFERRED, referrer=POLICE), now=at("2026-11-02", "09:30"))
    listed = cli.ok("--help", now=at("2026-11-02")).stdout
    assert "duty " in listed and "duties" not in listed.lower()
    cli.ok("duties", "done", "C1", "referrer_acknowledgement", "--by", "TM1", now=at("2026-11-02", "11:00"))
    [recorded] = history_of(runtime, "C1", "duty.done")
    assert recorded.detail == {"duty": "referrer_acknowledgement", "how": None, "by": "TM1"}


@pytest.mark.parametrize(
    ("referrer", "owed"),
    [
        (POLICE, True),
        ({"source": "3A", "organisation": "Example Surgery"}, True),
        ({"source": "2A"}, True),  # a school with no details given: the worker can still find them
        ({"source": "10", "organisation": "Example Charity"}, True),  # unknown source, named body
        (no_contact_referrer("10"), False),  # unknown source, nothing to go on
        (no_contact_referrer("9"), False),  # anonymous
        (no_contact_referrer("1A"), False),  # a relative who left no details: no one to tell
    ],
)
def test_only_a_referrer_no_one_can_tell_cancels_the_duty(
    runtime: Runtime, referrer: dict[str, Any], owed: bool
) -> None:
    assert import_events(runtime, referral("C1", REFERRED, referrer=referrer), now=REFERRED).ok
    status = clocks_by_name(runtime, "C1", "2026-11-02")["referrer_acknowledgement"]["status"]
    assert status == ("running" if owed else "cancelled")
    assert len(history_of(runtime, "C1", "duty.by_hand")) == (1 if owed else 0)


def test_a_professional_with_no_contact_details_is_told_the_decision_by_phone_too(runtime: Runtime) -> None:
    decided = event("decision.made", "C1", "2026-11-02T11:00:00+00:00", outcome="nfa")
    referred = referral("C1", REFERRED, referrer=SCHOOL)
    assert import_events(runtime, referred, decided, now="2026-11-02T12:00:00+00:00").ok
    assert [e.detail["duty"] for e in history_of(runtime, "C1", "duty.by_hand")] == [
        "referrer_acknowledgement",
        "referrer_outcome",
    ]
    assert clocks_by_name(runtime, "C1", "2026-11-02")["referrer_outcome"]["status"] == "running"


# -- 9 (part): the fallback manager -----------------------------------------------------------------


def test_cases_the_directory_cannot_place_are_reminded_to_the_fallback_manager(
    database_url: str, tmp_path: Path
) -> None:
    rt = letter_runtime(
        database_url,
        tmp_path / "var",
        MovableClock(at("2026-11-02")),
        policy_file=policy_file(tmp_path, fallback_manager="HQ1"),
    )
    try:
        import_staff(rt, *front_door_staff(), staff_row("HQ1", "service_manager", team="hq"))
        ghost = referral("C1", REFERRED, team="ghost-team", referrer=no_contact_referrer("1A"))
        # A worker the directory does not know, in a team it does know: that team's manager.
        stranger = referral("C2", REFERRED, referrer=no_contact_referrer("1A"))
        assert import_events(
            rt, ghost, allocated("C1", "GHOST"), stranger, allocated("C2", "NOBODY"), now=REFERRED
        ).ok
        for day in ("2026-11-02", "2026-11-03", "2026-11-04", "2026-11-06"):
            assert set(sweep_and_deliver(rt, at(day)).values()) == {"sent"}
        assert items_of(rt, "2026-11-02") == [
            ("decision", "HQ1", "fallback_manager", "warning"),
            ("decision", "TM1", "team_manager", "warning"),
        ]
        assert items_of(rt, "2026-11-03") == [
            ("decision", "HQ1", "fallback_manager", "due"),
            ("decision", "TM1", "team_manager", "due"),
        ]
        # Breached: what would go to the worker, the team manager and (later) the service manager
        # reaches the fallback manager once a day, as the most serious step.
        assert items_of(rt, "2026-11-04") == [
            ("decision", "HQ1", "fallback_manager", "escalation"),
            ("decision", "TM1", "team_manager", "escalation"),
        ]
        assert ("decision", "HQ1", "fallback_manager", "repeat") in items_of(rt, "2026-11-06")

        mails = [m for m in _mails(tmp_path / "var" / "outbox") if m["To"] == "hq1@council.example"]
        assert len(mails) == 4
        unknown = "team 'ghost-team' is not in the staff directory"
        header = "== Case C1 (team ghost-team; unallocated: worker GHOST is not in the staff directory)"
        for text in map(text_of, mails):
            assert header in text
            assert f"You get this as the fallback manager: {unknown}" in text
            assert "C2" not in text
    finally:
        rt.close()


def test_without_a_fallback_manager_the_sweep_says_deadlines_reach_no_one(runtime: Runtime) -> None:
    import_staff(runtime)
    assert import_events(runtime, referral("C1", REFERRED, team="ghost-team"), now=REFERRED).ok
    report = sweep(runtime, at("2026-11-04"))
    assert report.plan.unrouted == 2  # the decision and the acknowledgement
    assert "2 deadlines reach no one: set reminders.fallback_manager" in report.summary()


@pytest.mark.parametrize("value", ["", "two words", "x" * 65, 7])
def test_a_fallback_manager_that_cannot_be_a_staff_id_is_refused(value: object) -> None:
    data = yaml.safe_load(DEFAULT_POLICY_FILE.read_text(encoding="utf-8"))
    data["reminders"]["fallback_manager"] = value
    with pytest.raises(PolicyError, match=r"^policy: reminders\.fallback_manager: "):
        parse_policy(data)


# -- 16: digests say why and what to do ---------------------------------------------------------------


class BouncingSmtp(SmtpRecorder):
    """A real SMTP server's handler that refuses one address for good (550) and keeps the rest."""

    def __init__(self, refused: str) -> None:
        super().__init__()
        self.refused = refused

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address == self.refused:
            return "550 5.1.1 no such mailbox"
        return await super().handle_RCPT(server, session, envelope, address, options)


def test_a_digest_groups_by_case_most_urgent_first_and_says_why_each_is_late(
    database_url: str, tmp_path: Path
) -> None:
    handler = BouncingSmtp("bounce@school.example")
    with smtp_server(handler) as url:
        rt = letter_runtime(database_url, tmp_path / "var", MovableClock(at("2026-11-02")), smtp_url=url)
        try:
            import_staff(rt)
            school = {**SCHOOL, "email": "dsl@school.example"}
            events = [
                # C4 was referred first: the most overdue, so first in the digest.
                referral("C4", "2026-10-29T09:00:00+00:00", referrer=no_contact_referrer("1A")),
                allocated("C4", "W1", "2026-10-29T09:00:00+00:00"),
                referral("C1", EARLY, referrer=school, flags=["domestic_abuse"]),  # held
                referral("C2", EARLY, referrer={**school, "email": "bounce@school.example"}),  # fails
                referral("C3", EARLY, referrer=POLICE),  # nobody to write to
                *(allocated(ref, "W1", EARLY) for ref in ("C1", "C2", "C3")),
            ]
            assert import_events(rt, *events, now=EARLY).ok
            # Before office hours: the letters go, the digests wait for the day.
            assert set(sweep_and_deliver(rt, at("2026-11-02", "07:30")).values()) == {"failed"}  # C2's
            held = letter_of(rt, "C1", "referrer_acknowledgement", "referrer")
            failed = letter_of(rt, "C2", "referrer_acknowledgement", "referrer")
            assert (held.status, failed.status) == ("held", "failed")

            outcomes = sweep_and_deliver(rt, at("2026-11-04"))
            assert set(outcomes.values()) == {"sent"}
            [mail] = handler.to("w1@council.example")
        finally:
            rt.close()

    assert mail["Subject"] == "caseloop: 8 deadlines need attention (7 overdue)"
    text = text_of(mail)
    headers = [line for line in text.splitlines() if line.startswith("== Case")]
    assert headers == [
        "== Case C4 (team front-door; W1)",
        "== Case C1 (team front-door; W1)",
        "== Case C2 (team front-door; W1)",
        "== Case C3 (team front-door; W1)",
    ]
    assert "These deadlines on 4 cases need your attention on 2026-11-04, the most urgent first." in text
    sections = dict(zip(["C4", "C1", "C2", "C3"], text.split("== Case ")[1:], strict=True))
    assert "Why it is late: not recorded yet" in sections["C4"]
    assert (
        "To do: record it in the case system (decision.made); caseloop takes it from there" in sections["C4"]
    )
    assert (
        "Why it is late: held for approval: domestic abuse: a worker must review every letter"
        in sections["C1"]
    )
    review = f"review it on http://localhost:8000/letters/{held.id}: approve it, or reject it with a reason"
    assert f"To do: {review}" in sections["C1"]
    assert "Why it is late: the letter failed (" in sections["C2"]
    assert "reach them another way, then record it on http://localhost:8000/my-work" in sections["C2"]
    # The failed letter is a task of its own, due today: where it stands, not why it is late.
    assert "Where it stands: a letter failed or came back" in sections["C2"]
    phone = "tell them by phone, then record it on http://localhost:8000/my-work"
    assert phone in sections["C3"]
    assert "And " not in text  # four cases: within the limit


def test_a_long_digest_lists_the_most_urgent_cases_and_counts_the_rest(
    database_url: str, tmp_path: Path
) -> None:
    rt = letter_runtime(
        database_url,
        tmp_path / "var",
        MovableClock(at("2026-11-02")),
        policy_file=policy_file(tmp_path, digest_limit=2),
    )
    try:
        import_staff(rt)
        events = []
        for n, day in enumerate(("2026-10-27", "2026-10-28", "2026-10-29", "2026-10-30"), start=1):
            events += [
                referral(f"C{n}", f"{day}T09:00:00+00:00", referrer=no_contact_referrer("1A")),
                allocated(f"C{n}", "W1", f"{day}T09:00:00+00:00"),
            ]
        assert import_events(rt, *events, now=REFERRED).ok
        assert set(sweep_and_deliver(rt, at("2026-11-04")).values()) == {"sent"}
        [mail] = [m for m in _mails(tmp_path / "var" / "outbox") if m["To"] == "w1@council.example"]
    finally:
        rt.close()
    text = text_of(mail)
    assert [line for line in text.splitlines() if line.startswith("== Case")] == [
        "== Case C1 (team front-door; W1)",
        "== Case C2 (team front-door; W1)",
    ]
    assert "And 2 more cases (2 deadlines) not listed here: caseloop queue overdue --as W1" in text
    assert mail["Subject"] == "caseloop: 4 deadlines need attention (4 overdue)"


# -- 16: leavers ------------------------------------------------------------------------------------


def test_a_leaver_gets_nothing_from_their_leaving_day_and_their_cases_go_to_their_manager(
    cli: Cli, runtime: Runtime
) -> None:
    quiet = referral("C1", REFERRED, referrer=no_contact_referrer("1A"))
    cli.take(quiet, allocated("C1", "W1"), now=at("2026-11-02", "09:30"))
    # Told on Monday that W1 leaves on Wednesday.
    assert cli.ok("staff", "leave", "W1", "--on", "2026-11-04", now=at("2026-11-02", "09:40")).stdout == (
        "W1 leaves on 2026-11-04\n"
    )
    cli.ok("tick", now=at("2026-11-03"))
    assert items_of(runtime, "2026-11-03") == [("decision", "W1", "worker", "due")]  # still here

    cli.ok("tick", now=at("2026-11-04"))
    # The breach reminder W1 would have had goes to TM1, folded into TM1's escalation.
    assert items_of(runtime, "2026-11-04") == [("decision", "TM1", "team_manager", "escalation")]
    assert len(cli.mails_to("w1@council.example")) == 1  # Tuesday's, none since
    [tm1] = cli.mails_to("tm1@council.example")
    assert "== Case C1 (team front-door; unallocated: W1 left on 2026-11-04)" in text_of(tm1)
    [row] = cli.json("queue", "overdue", "--as", "TM1", now=at("2026-11-04"))
    left = "unallocated: W1 left on 2026-11-04"
    assert (row["case"], row["worker"], row["allocation"]) == ("C1", "W1", left)

    # A leaver may no longer act.
    refused = cli("case", "show", "C1", "--as", "W1", now=at("2026-11-04"))
    ended = "error: W1 has left on 2026-11-04: their access has ended\n"
    assert (refused.exit_code, refused.stderr) == (2, ended)

    # The staff file imported again does not bring W1 back; it says so, and is not an error.
    again = cli.staff(now=at("2026-11-05"))
    assert again.exit_code == 0, again.output
    assert again.stderr == (
        "kept as a leaver: row 4: W1 left on 2026-11-04 and stays a leaver "
        "(`caseloop staff rejoin W1` brings them back)\n"
    )
    assert cli("case", "show", "C1", "--as", "W1", now=at("2026-11-05")).exit_code == 2

    assert cli.ok("staff", "rejoin", "W1", now=at("2026-11-05")).stdout == "W1 is back\n"
    [row] = cli.json("queue", "overdue", "--as", "W1", now=at("2026-11-05"))
    assert row["allocation"] == "W1"
    cli.ok("tick", now=at("2026-11-05"))
    assert ("decision", "W1", "worker", "breach") in items_of(runtime, "2026-11-05")


def test_leaving_cancels_the_digest_waiting_for_them_and_a_bad_date_or_id_is_refused(
    cli: Cli, runtime: Runtime
) -> None:
    quiet = referral("C1", REFERRED, referrer=no_contact_referrer("1A"))
    cli.take(quiet, allocated("C1", "W2"), now=at("2026-11-02", "09:30"))
    sweep(runtime, at("2026-11-04"))  # planned, not yet sent
    [digest] = _digests(runtime, "W2")
    assert digest.status == "queued"
    left = leave(runtime, SYSTEM, "W2", now=at("2026-11-04", "11:00"))
    assert (left.on, left.digests_cancelled) == (date(2026, 11, 4), 1)
    [digest] = _digests(runtime, "W2")
    assert digest.status == "cancelled"
    with runtime.db.transaction() as session:
        audit = session.scalars(select(OutboxAudit).where(OutboxAudit.outbox_id == digest.id)).all()
        note = "W2 left on 2026-11-04"
        assert (audit[-1].action, audit[-1].by, audit[-1].note) == ("cancelled", "caseloop", note)

    bad = cli("staff", "leave", "W1", "--on", "4/11/2026", now=at("2026-11-04"))
    assert bad.exit_code == 2 and "'4/11/2026' is not a date (YYYY-MM-DD)" in bad.output
    nobody = cli("staff", "leave", "NOBODY", now=at("2026-11-04"))
    assert (nobody.exit_code, nobody.stderr) == (2, "error: no member of staff 'NOBODY'\n")
    back = cli("staff", "rejoin", "W1", now=at("2026-11-04"))
    assert (back.exit_code, back.stderr) == (2, "error: W1 has not left\n")


def test_when_the_leavers_manager_has_left_too_the_team_or_the_fallback_hears(
    database_url: str, tmp_path: Path
) -> None:
    rt = letter_runtime(
        database_url,
        tmp_path / "var",
        MovableClock(at("2026-11-02")),
        policy_file=policy_file(tmp_path, fallback_manager="HQ1"),
    )
    try:
        import_staff(rt, *front_door_staff(), staff_row("HQ1", "service_manager", team="hq"))
        quiet = referral("C1", REFERRED, referrer=no_contact_referrer("1A"))
        assert import_events(rt, quiet, allocated("C1", "W1"), now=REFERRED).ok
        for person in ("W1", "TM1", "SM1"):
            leave(rt, SYSTEM, person, date(2026, 11, 3), now=at("2026-11-02", "12:00"))
        sweep(rt, at("2026-11-04"))
        assert items_of(rt, "2026-11-04") == [("decision", "HQ1", "fallback_manager", "escalation")]
    finally:
        rt.close()


def _digests(rt: Runtime, staff_id: str) -> list[OutboxMessage]:
    with rt.db.transaction() as session:
        return list(
            session.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.kind == "reminder_digest", OutboxMessage.recipient == staff_id
                )
            )
        )


def _mails(folder: Path) -> list[Any]:
    return [message_from_bytes(p.read_bytes(), policy=policy.default) for p in sorted(folder.glob("*.eml"))]


def test_a_letter_waiting_when_its_worker_leaves_names_the_team_not_the_leaver(
    cli: Cli, runtime: Runtime
) -> None:
    decided = event("decision.made", "C1", "2026-11-02T09:10:00+00:00", outcome="assessment")
    cli.take(referral("C1", REFERRED), allocated("C1", "W1"), decided, now=at("2026-11-02", "09:30"))
    letter = letter_of(runtime, "C1", "school_worker_involved", "school")
    show = ("outbox", "show", str(letter.id), "--format", "text")
    assert "Staff W1" in cli.ok(*show, now=at("2026-11-02", "09:40")).stdout
    cli.ok("staff", "leave", "W1", now=at("2026-11-02", "09:45"))
    assert "Staff W1" not in cli.ok(*show, now=at("2026-11-02", "09:50")).stdout
