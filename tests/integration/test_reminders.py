"""Reminders and escalation (issue 3, part 4) on both databases, driven through the real sweep.

Staff: service manager SM1 over team manager TM1 over social workers W1 and W2 (team front-door).
A referral on Mon 2 Nov 2026 starts two one-working-day clocks (decision, referrer
acknowledgement), both due Tue 3 Nov 2026; November 2026 has no bank holidays.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, time
from email import message_from_bytes, policy
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlalchemy import select
from typer.testing import CliRunner

from cli.main import app
from config.settings import DEFAULT_POLICY_FILE
from config.wiring import Runtime
from messaging.channels import FileChannel
from messaging.outbox import OutboxMessage
from tests.factories import (
    acknowledge,
    event,
    import_events,
    import_staff,
    no_contact_referrer,
    referral,
    staff_row,
    sweep,
)
from workflow.bus import HANDLERS
from workflow.clocks import Rulebook
from workflow.errors import NotFound
from workflow.happened import DigestsOwed
from workflow.model import Case, ClockRow
from workflow.policy import parse_policy
from workflow.reminders import NotYours, ReminderAck, ReminderDay, ReminderItem, plan_day

LONDON = ZoneInfo("Europe/London")
CHILD = "Zanzibar Canary-Tester"


@pytest.fixture
def rt(runtime: Runtime, tmp_path: Path) -> Runtime:
    runtime.channels["file"] = FileChannel(tmp_path / "outbox", runtime.settings.mail_from)
    import_staff(runtime)
    return runtime


def at(day: str, hhmm: str = "10:00") -> datetime:
    """``hhmm`` local time on ``day``, as an aware UTC instant."""
    return datetime.combine(date.fromisoformat(day), time.fromisoformat(hhmm), LONDON).astimezone(UTC)


def open_case(
    rt: Runtime, ref: str, day: str, worker: str | None = "W1", *, referrer_contact: bool = True
) -> None:
    """A family referral at 09:00 UTC on ``day``, allocated to ``worker`` (or unallocated).

    Without ``referrer_contact`` the referrer left no contact details, so no acknowledgement
    letter joins the outbox (its duty's clock still runs, unmet, and is reminded)."""
    school = {"name": "Test Primary", "dsl_name": "Lead Example", "email": "dsl@school.example"}
    child = {"name": CHILD, "dob": "2016-05-01", "school": school}
    contact = {} if referrer_contact else {"referrer": no_contact_referrer("1A")}
    events = [referral(ref, f"{day}T09:00:00+00:00", source="1A", child=child, **contact)]
    if worker:
        events.append(event("worker.allocated", ref, f"{day}T09:00:00+00:00", worker=worker))
    report = import_events(rt, *events, now=f"{day}T09:30:00+00:00")
    assert report.ok, report.rejected


def items(rt: Runtime, day: str | None = None) -> list[tuple[str, str, str, str, str]]:
    """(case, clock, recipient, role, step) of the reminder items, for one day or all."""
    query = (
        select(Case.ref, ClockRow.name, ReminderItem.recipient, ReminderItem.recipient_role)
        .add_columns(ReminderItem.step)
        .join(ClockRow, ClockRow.id == ReminderItem.clock_id)
        .join(Case, Case.id == ReminderItem.case_id)
    )
    if day is not None:
        query = query.where(ReminderItem.for_date == date.fromisoformat(day))
    with rt.db.transaction() as session:
        return sorted(tuple(r) for r in session.execute(query))  # type: ignore[misc]


def digests(rt: Runtime) -> list[tuple[str, str, str, int]]:
    """(idempotency key, recipient role, address, number of items) of every reminder digest."""
    with rt.db.transaction() as session:
        rows = session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.kind == "reminder_digest")
            .order_by(OutboxMessage.idempotency_key)
        ).all()
        return [(m.idempotency_key, m.recipient_role, m.address, len(m.payload["items"])) for m in rows]


def item_id(rt: Runtime, recipient: str, clock: str, day: str) -> int:
    with rt.db.transaction() as session:
        return session.scalars(
            select(ReminderItem.id)
            .join(ClockRow, ClockRow.id == ReminderItem.clock_id)
            .where(
                ReminderItem.recipient == recipient,
                ClockRow.name == clock,
                ReminderItem.for_date == date.fromisoformat(day),
            )
        ).one()


def both(case: str, recipient: str, role: str, step: str) -> list[tuple[str, str, str, str, str]]:
    return [(case, clock, recipient, role, step) for clock in ("decision", "referrer_acknowledgement")]


def test_warning_due_breach_and_escalations_reach_the_right_people(rt: Runtime) -> None:
    open_case(rt, "C1", "2026-11-02")
    for day in ("2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05", "2026-11-06"):
        assert sweep(rt, at(day)).plan.planned
    assert items(rt, "2026-11-02") == both("C1", "W1", "worker", "warning")
    assert items(rt, "2026-11-03") == both("C1", "W1", "worker", "due")
    assert items(rt, "2026-11-04") == sorted(
        both("C1", "W1", "worker", "breach") + both("C1", "TM1", "team_manager", "escalation")
    )
    assert items(rt, "2026-11-05") == sorted(
        both("C1", "W1", "worker", "repeat") + both("C1", "TM1", "team_manager", "repeat")
    )
    assert items(rt, "2026-11-06") == sorted(  # 3 working days overdue: breach day + 2
        both("C1", "W1", "worker", "repeat")
        + both("C1", "TM1", "team_manager", "repeat")
        + both("C1", "SM1", "service_manager", "escalation")
    )
    assert digests(rt) == [
        ("reminder_digest:SM1:2026-11-06", "manager", "sm1@council.example", 2),
        ("reminder_digest:TM1:2026-11-04", "manager", "tm1@council.example", 2),
        ("reminder_digest:TM1:2026-11-05", "manager", "tm1@council.example", 2),
        ("reminder_digest:TM1:2026-11-06", "manager", "tm1@council.example", 2),
        *[(f"reminder_digest:W1:2026-11-0{d}", "worker", "w1@council.example", 2) for d in range(2, 7)],
    ]


def test_an_unallocated_case_reminds_the_team_manager(rt: Runtime) -> None:
    open_case(rt, "U1", "2026-11-02", worker=None)
    for day in ("2026-11-02", "2026-11-03", "2026-11-04", "2026-11-06"):
        sweep(rt, at(day))
    assert items(rt, "2026-11-02") == both("U1", "TM1", "team_manager", "warning")
    assert items(rt, "2026-11-03") == both("U1", "TM1", "team_manager", "due")
    assert items(rt, "2026-11-04") == both("U1", "TM1", "team_manager", "escalation")  # one item a clock
    assert items(rt, "2026-11-06") == sorted(
        both("U1", "SM1", "service_manager", "escalation") + both("U1", "TM1", "team_manager", "repeat")
    )


def test_one_digest_per_person_per_day_however_many_clocks(rt: Runtime) -> None:
    for ref, worker in (("C1", "W1"), ("C2", "W1"), ("C3", "W1"), ("C4", "W2")):
        open_case(rt, ref, "2026-11-02", worker)
    report = sweep(rt, at("2026-11-03"))
    assert (report.plan.items, report.plan.digests) == (8, 2)
    assert digests(rt) == [
        ("reminder_digest:W1:2026-11-03", "worker", "w1@council.example", 6),
        ("reminder_digest:W2:2026-11-03", "worker", "w2@council.example", 2),
    ]
    report = sweep(rt, at("2026-11-04"))
    assert report.plan.digests == 3  # W1, W2 and TM1, whose digest folds all four cases
    assert digests(rt)[0] == ("reminder_digest:TM1:2026-11-04", "manager", "tm1@council.example", 8)


def test_breached_reminders_repeat_once_a_working_day_until_the_clock_is_met(rt: Runtime) -> None:
    open_case(rt, "C1", "2026-11-02")
    planned = [
        sweep(rt, at(day, hhmm)).plan.planned
        for day, hhmm in (
            ("2026-11-04", "08:00"),
            ("2026-11-04", "08:15"),
            ("2026-11-04", "16:00"),
            ("2026-11-05", "09:00"),
            ("2026-11-07", "10:00"),
            ("2026-11-08", "10:00"),
            ("2026-11-09", "11:00"),
        )
    ]
    assert planned == [True, False, False, True, False, False, True]
    worker_steps = [
        (d, s)
        for d in ("2026-11-04", "2026-11-05", "2026-11-06", "2026-11-09")
        for (_, c, who, _, s) in items(rt, d)
        if who == "W1" and c == "decision"
    ]
    assert worker_steps == [("2026-11-04", "breach"), ("2026-11-05", "repeat"), ("2026-11-09", "repeat")]

    assert import_events(
        rt,
        event("decision.made", "C1", "2026-11-09T12:00:00+00:00", outcome="nfa"),
        now="2026-11-09T12:00:00+00:00",
    ).ok
    sweep(rt, at("2026-11-10"))
    planned_on_10th = {c for (_, c, _, _, _) in items(rt, "2026-11-10")}
    assert planned_on_10th == {"referrer_acknowledgement", "family_decision"}


def test_an_acknowledgement_stops_repeats_to_that_person_until_the_service_manager_is_told(
    rt: Runtime,
) -> None:
    open_case(rt, "C1", "2026-11-02")
    sweep(rt, at("2026-11-04"))
    breach = item_id(rt, "W1", "decision", "2026-11-04")
    acknowledge(rt, breach, "W1", "visiting the family today", at("2026-11-04", "11:00"))
    sweep(rt, at("2026-11-05"))
    still = ("C1", "referrer_acknowledgement", "W1", "worker", "repeat")
    assert items(rt, "2026-11-05") == sorted([still, *both("C1", "TM1", "team_manager", "repeat")])
    sweep(rt, at("2026-11-06"))  # the service-manager escalation: repeats to W1 resume
    assert ("C1", "decision", "W1", "worker", "repeat") in items(rt, "2026-11-06")

    acknowledge(rt, item_id(rt, "SM1", "decision", "2026-11-06"), "SM1", None, at("2026-11-06"))
    with rt.db.transaction() as session:
        (first, second) = session.scalars(select(ReminderAck).order_by(ReminderAck.id)).all()
    assert (first.staff_id, first.stage, first.note) == ("W1", 1, "visiting the family today")
    assert (second.staff_id, second.stage, second.note) == ("SM1", 2, None)
    sweep(rt, at("2026-11-09"))
    assert [i for i in items(rt, "2026-11-09") if i[2] == "SM1"] == [
        ("C1", "referrer_acknowledgement", "SM1", "service_manager", "repeat")
    ]


def test_nobody_else_can_acknowledge_a_reminder(rt: Runtime) -> None:
    open_case(rt, "C1", "2026-11-02")
    sweep(rt, at("2026-11-04"))
    breach = item_id(rt, "W1", "decision", "2026-11-04")
    with pytest.raises(NotYours, match=f"^reminder {breach} was sent to W1, not TM1$"):
        acknowledge(rt, breach, "TM1", "not mine", at("2026-11-04"))
    with pytest.raises(NotFound, match=r"^no reminder 999999$"):
        acknowledge(rt, 999_999, "W1", None, at("2026-11-04"))
    with rt.db.transaction() as session:
        assert session.scalars(select(ReminderAck)).all() == []


def test_the_cli_acknowledges_with_a_note_and_refuses_someone_else(rt: Runtime) -> None:
    open_case(rt, "C1", "2026-11-02")
    sweep(rt, at("2026-11-04"))
    breach = item_id(rt, "W1", "decision", "2026-11-04")
    runner, env = CliRunner(), {"CASELOOP_DATABASE_URL": rt.settings.database_url}
    now = ["--now", at("2026-11-04", "12:00").isoformat()]

    other = runner.invoke(app, [*now, "reminders", "ack", str(breach), "--by", "TM1"], env=env)
    assert other.exit_code == 2
    assert other.stderr.strip() == f"error: reminder {breach} was sent to W1, not TM1"

    ok = runner.invoke(app, [*now, "reminders", "ack", str(breach), "--by", "W1", "--note", "on it"], env=env)
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.strip() == f"acknowledged reminder {breach} (acknowledgement 1)"
    with rt.db.transaction() as session:
        (ack,) = session.scalars(select(ReminderAck)).all()
    assert (ack.item_id, ack.staff_id, ack.note, ack.at) == (breach, "W1", "on it", at("2026-11-04", "12:00"))
    sweep(rt, at("2026-11-05"))
    assert ("C1", "decision", "W1", "worker", "repeat") not in items(rt, "2026-11-05")


def test_quiet_hours_nothing_planned_out_of_hours_or_on_closed_days(rt: Runtime) -> None:
    open_case(rt, "C1", "2026-12-23")  # due Thu 24 December
    attempts = [
        ("2026-12-23", "18:00"),
        ("2026-12-24", "07:59"),
        ("2026-12-24", "08:00"),
        ("2026-12-24", "17:59"),
        ("2026-12-25", "10:00"),
        ("2026-12-26", "10:00"),
        ("2026-12-27", "10:00"),
        ("2026-12-28", "10:00"),
        ("2026-12-29", "07:59"),
        ("2026-12-29", "08:00"),
        ("2026-12-31", "08:00"),
        ("2027-01-01", "10:00"),
    ]
    planned = {f"{d} {t}": sweep(rt, at(d, t)).plan.planned for d, t in attempts}
    opened = ["2026-12-24 08:00", "2026-12-29 08:00", "2026-12-31 08:00"]
    assert [k for k, v in planned.items() if v] == opened
    with rt.db.transaction() as session:
        assert plan_day(rt.db, rt.book, at("2026-12-25"), "file").why == (
            "outside office hours or not a working day"
        )
        days = session.scalars(select(ReminderDay.day).order_by(ReminderDay.day)).all()
    assert [d.isoformat() for d in days] == ["2026-12-24", "2026-12-29", "2026-12-31"]
    assert items(rt, "2026-12-29") == sorted(
        both("C1", "W1", "worker", "breach") + both("C1", "TM1", "team_manager", "escalation")
    )
    assert {i[2] for i in items(rt, "2026-12-31") if i[4] == "escalation"} == {"SM1"}


def test_a_digest_left_queued_at_closing_waits_for_the_next_opening(rt: Runtime) -> None:
    open_case(rt, "C1", "2026-11-02", referrer_contact=False)  # no letter: the outbox holds only digests
    evening = sweep(rt, at("2026-11-02", "17:55"))
    (digest,) = evening.to_deliver  # claimed, but the broker lost it
    late = [
        sweep(rt, at(*moment)).to_deliver
        for moment in (
            ("2026-11-02", "18:05"),
            ("2026-11-02", "23:30"),
            ("2026-11-03", "03:00"),
            ("2026-11-03", "07:59"),
        )
    ]
    assert late == [[], [], [], []]
    morning = sweep(rt, at("2026-11-03", "08:00")).to_deliver
    assert morning[0] == digest
    assert len(morning) == 2  # yesterday's digest again, and today's


def test_two_sweeps_at_once_plan_each_reminder_once(rt: Runtime) -> None:
    for ref in ("C1", "C2"):
        open_case(rt, ref, "2026-11-02")
    barrier, reports = threading.Barrier(2), []

    def run() -> None:
        barrier.wait()
        reports.append(sweep(rt, at("2026-11-04", "08:00")))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    planned = sorted(bool(r.plan and r.plan.planned) for r in reports)
    assert planned == [False, True]
    assert len(items(rt, "2026-11-04")) == 8
    assert [d[0] for d in digests(rt)] == ["reminder_digest:TM1:2026-11-04", "reminder_digest:W1:2026-11-04"]
    with rt.db.transaction():
        assert plan_day(rt.db, rt.book, at("2026-11-04", "12:00"), "file").why == "already planned today"


def test_the_email_subject_never_names_the_child_and_links_to_the_case(rt: Runtime, tmp_path: Path) -> None:
    open_case(rt, "C1", "2026-11-02", referrer_contact=False)  # no letters: only the digests are mailed
    open_case(rt, "C2", "2026-11-02", referrer_contact=False)
    report = sweep(rt, at("2026-11-04"))
    outcomes = [rt.deliverer().deliver(i) for i in report.to_deliver]
    assert outcomes == ["sent", "sent"]
    mails = [
        message_from_bytes(p.read_bytes(), policy=policy.default)
        for p in sorted((tmp_path / "outbox").glob("*.eml"))
    ]
    assert sorted(m["To"] for m in mails) == ["tm1@council.example", "w1@council.example"]
    for mail in mails:
        # The acknowledgement duty is moot (the referrer left no contact details): only decisions remain.
        assert mail["Subject"] == "caseloop: 2 deadlines need attention (2 overdue)"
        text, html = (
            mail.get_body(preferencelist=(kind,)).get_content()  # type: ignore[union-attr]
            for kind in ("plain", "html")
        )
        for part in (mail["Subject"], text, html):
            assert "Zanzibar" not in part and "Canary" not in part and "Test Street" not in part
        assert "Open the case: http://localhost:8000/cases/C1" in text
        assert "Open the case: http://localhost:8000/cases/C2" in text
        assert 'href="http://localhost:8000/cases/C1"' in html


def test_a_long_warning_window_still_warns_on_its_first_day(rt: Runtime) -> None:
    """The longest warning the policy allows (20 working days) across Christmas: a clock due Wed
    13 Jan 2027 is 20 working days after Fri 11 Dec 2026 but 33 calendar days away."""
    data = yaml.safe_load(DEFAULT_POLICY_FILE.read_text(encoding="utf-8"))
    data["reminders"]["warn_working_days_before"] = 20
    next(c for c in data["clocks"] if c["name"] == "decision")["goal"] = {"working_days": 20}
    rt.book = Rulebook.build(parse_policy(data), LONDON)
    open_case(rt, "C1", "2026-12-11")
    assert rt.book.calendar.add_working_days(date(2026, 12, 11), 20) == date(2027, 1, 13)
    sweep(rt, at("2026-12-11"))
    assert items(rt, "2026-12-11") == both("C1", "W1", "worker", "warning")


def test_a_transferred_case_is_reminded_to_its_new_team(rt: Runtime) -> None:
    """The queue, reminders and escalations follow the owning team the day the case moves."""
    import_staff(
        rt,
        staff_row("SM2", "service_manager", team="south"),
        staff_row("TM2", "team_manager", team="south", manager="SM2"),
    )
    open_case(rt, "T1", "2026-11-02", worker=None)
    sweep(rt, at("2026-11-02"))
    assert items(rt, "2026-11-02") == both("T1", "TM1", "team_manager", "warning")
    moved = import_events(
        rt,
        event("case.transferred", "T1", "2026-11-02T15:00:00+00:00", team="south"),
        now="2026-11-02T15:30:00+00:00",
    )
    assert moved.ok, moved.rejected
    sweep(rt, at("2026-11-03"))
    assert items(rt, "2026-11-03") == both("T1", "TM2", "team_manager", "due")


def test_planning_in_chunks_of_one_clock_plans_what_one_chunk_does(rt: Runtime) -> None:
    # Chunks are transactions of their own: a person's items from many chunks still make one digest.
    for ref in ("C1", "C2", "C3"):
        open_case(rt, ref, "2026-11-02")
    report = plan_day(rt.db, rt.book, at("2026-11-04", "08:00"), "file", chunk=1)
    assert (report.planned, report.items, report.digests) == (True, 12, 2)
    assert len(items(rt, "2026-11-04")) == 12
    assert digests(rt) == [
        ("reminder_digest:TM1:2026-11-04", "manager", "tm1@council.example", 6),
        ("reminder_digest:W1:2026-11-04", "worker", "w1@council.example", 6),
    ]
    again = plan_day(rt.db, rt.book, at("2026-11-04", "09:00"), "file", chunk=1)
    assert again.why == "already planned today"
    with pytest.raises(ValueError, match="plan chunk must be at least 1 clock, not 0"):
        plan_day(rt.db, rt.book, at("2026-11-05", "08:00"), "file", chunk=0)


def test_a_pass_that_dies_before_the_digests_is_resumed_never_duplicated(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    for ref in ("C1", "C2"):
        open_case(rt, ref, "2026-11-02")

    def dies(_session: object, _owed: object) -> None:
        raise RuntimeError("the worker died while making the digests")

    table = rt.db.session_info[HANDLERS]
    monkeypatch.setitem(table, DigestsOwed, [dies])
    with pytest.raises(RuntimeError, match="died"):
        plan_day(rt.db, rt.book, at("2026-11-04", "08:00"), "file", chunk=1)
    # The chunks' items were committed; the day is not marked planned and no digest exists.
    assert len(items(rt, "2026-11-04")) == 8
    assert digests(rt) == []
    with rt.db.transaction() as session:
        assert session.scalars(select(ReminderDay.day)).all() == []

    monkeypatch.undo()
    resumed = sweep(rt, at("2026-11-04", "08:05"))
    assert resumed.plan is not None and (resumed.plan.items, resumed.plan.digests) == (8, 2)
    assert len(items(rt, "2026-11-04")) == 8  # nothing planned twice
    assert [(d[0], d[3]) for d in digests(rt)] == [
        ("reminder_digest:TM1:2026-11-04", 4),
        ("reminder_digest:W1:2026-11-04", 4),
    ]
    with rt.db.transaction() as session:
        unlinked = session.scalars(select(ReminderItem.id).where(ReminderItem.outbox_id.is_(None))).all()
    assert unlinked == []


class _Untouchable:
    """A channel that fails the test if anything calls it: the sweep must only claim."""

    name = "file"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def send(self, *_args: object) -> str:
        self.calls.append("send")
        raise AssertionError("the sweep called a channel")

    def confirm(self, *_args: object) -> bool | None:
        self.calls.append("confirm")
        raise AssertionError("the sweep called a channel")


def test_the_sweep_claims_digests_and_letters_but_never_calls_a_channel(rt: Runtime) -> None:
    open_case(rt, "C1", "2026-11-02")
    untouchable = _Untouchable()
    rt.channels["file"] = untouchable  # type: ignore[assignment]
    report = sweep(rt, at("2026-11-04", "08:00"))
    assert report.plan is not None and report.plan.digests == 2
    assert len(report.to_deliver) >= 2  # the two digests (and the letter) are claimed, not sent
    assert untouchable.calls == []
    with rt.db.transaction() as session:
        statuses = set(session.scalars(select(OutboxMessage.status)).all())
    assert statuses == {"queued"}
