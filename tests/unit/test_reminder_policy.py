"""The reminder policy (issue 3, part 4): which steps a clock calls for on which day, and when
reminders may go out at all. Every date is worked out by hand.

England bank holidays used here: Good Friday 3 Apr and Easter Monday 6 Apr 2026; Christmas Day
Fri 25 Dec 2026, Boxing Day (substitute) Mon 28 Dec 2026, New Year's Day Fri 1 Jan 2027.
Europe/London moves to BST at 01:00 UTC on Sun 29 Mar 2026 and back at 01:00 UTC on Sun 25 Oct 2026.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from freezegun import freeze_time

from config.settings import DEFAULT_POLICY_FILE
from workflow.calendar import WorkingCalendar
from workflow.clocks import Rulebook
from workflow.policy import ReminderPolicy, parse_policy
from workflow.reminders import in_office_hours, steps_for

LONDON = ZoneInfo("Europe/London")
CALENDAR = WorkingCalendar("GB", "ENG")


def book_with(**reminders: Any) -> Rulebook:
    """The shipped policy with its ``reminders:`` section changed, as a council would edit it."""
    data = yaml.safe_load(DEFAULT_POLICY_FILE.read_text(encoding="utf-8"))
    data["reminders"].update(reminders)
    return Rulebook.build(parse_policy(data), LONDON)


def plan(due: date, first: date, last: date, **policy: Any) -> dict[str, tuple[int, list[str]]]:
    """``steps_for`` on every working day from ``first`` to ``last``, as ``target:name`` strings."""
    rules = ReminderPolicy(**policy)
    seen, day = {}, first
    while day <= last:
        if CALENDAR.is_working_day(day):
            stage, steps = steps_for(due, day, CALENDAR, rules)
            seen[day.isoformat()] = (stage, [f"{s.target}:{s.name}" for s in steps])
        day += timedelta(days=1)
    return seen


WARN, DUE = (0, ["worker:warning"]), (0, ["worker:due"])
BREACH = (1, ["worker:breach", "team_manager:escalation"])
SERVICE = (2, ["worker:breach", "team_manager:escalation", "service_manager:escalation"])


def test_a_clock_due_on_christmas_eve_breaches_on_tuesday_29_december() -> None:
    assert plan(date(2026, 12, 24), date(2026, 12, 21), date(2027, 1, 5)) == {
        "2026-12-21": (0, []),  # three working days before: no warning yet
        "2026-12-22": (0, []),
        "2026-12-23": WARN,
        "2026-12-24": DUE,
        # 25, 26, 27 and 28 December are not working days
        "2026-12-29": BREACH,  # one working day overdue
        "2026-12-30": BREACH,
        "2026-12-31": SERVICE,  # breach day + 2 working days
        # 1 January 2027 is a bank holiday
        "2027-01-04": SERVICE,
        "2027-01-05": SERVICE,
    }


def test_the_warning_counts_working_days_across_bank_holidays() -> None:
    # Due Tue 29 Dec: one working day before is Thu 24 Dec (25 and 28 are bank holidays).
    assert plan(date(2026, 12, 29), date(2026, 12, 22), date(2026, 12, 29)) == {
        "2026-12-22": (0, []),
        "2026-12-23": (0, []),
        "2026-12-24": WARN,
        "2026-12-29": DUE,
    }
    # Over Easter: due Tue 7 April, warned Thu 2 April; due Thu 2 April, breached Tue 7 April.
    assert plan(date(2026, 4, 7), date(2026, 4, 1), date(2026, 4, 7)) == {
        "2026-04-01": (0, []),
        "2026-04-02": WARN,
        "2026-04-07": DUE,
    }
    assert plan(date(2026, 4, 2), date(2026, 4, 2), date(2026, 4, 10)) == {
        "2026-04-02": DUE,
        "2026-04-07": BREACH,
        "2026-04-08": BREACH,
        "2026-04-09": SERVICE,
        "2026-04-10": SERVICE,
    }


def test_the_warning_window_and_the_service_manager_delay_are_settings() -> None:
    due, first, last = date(2026, 11, 10), date(2026, 11, 4), date(2026, 11, 13)  # a Tuesday
    assert plan(due, first, last, warn_working_days_before=3, escalate_to_service_manager_after=0) == {
        "2026-11-04": (0, []),
        "2026-11-05": WARN,  # Thu: Fri, Mon, Tue left
        "2026-11-06": WARN,
        "2026-11-09": WARN,
        "2026-11-10": DUE,
        "2026-11-11": SERVICE,  # no delay: the service manager hears on the breach day
        "2026-11-12": SERVICE,
        "2026-11-13": SERVICE,
    }
    no_warning = plan(due, first, last, warn_working_days_before=0, escalate_to_service_manager_after=5)
    assert [no_warning[d] for d in ("2026-11-09", "2026-11-10", "2026-11-13")] == [(0, []), DUE, BREACH]
    assert plan(due, date(2026, 11, 17), date(2026, 11, 18), escalate_to_service_manager_after=5) == {
        "2026-11-17": BREACH,  # 5 working days overdue
        "2026-11-18": SERVICE,  # 6 = breach day + 5
    }


OPENING = [
    ("2026-03-02T07:59:59+00:00", False),  # Monday, GMT
    ("2026-03-02T08:00:00+00:00", True),
    ("2026-03-02T17:59:59+00:00", True),
    ("2026-03-02T18:00:00+00:00", False),
    ("2026-06-01T06:59:59+00:00", False),  # Monday, BST: 07:59 local
    ("2026-06-01T07:00:00+00:00", True),  # 08:00 local
    ("2026-06-01T16:59:59+00:00", True),
    ("2026-06-01T17:00:00+00:00", False),  # 18:00 local, though only 17:00 UTC
    ("2026-06-01T23:30:00+00:00", False),  # 00:30 on Tuesday
    ("2026-03-07T12:00:00+00:00", False),  # Saturday
    ("2026-03-08T12:00:00+00:00", False),  # Sunday
    ("2026-04-03T10:00:00+00:00", False),  # Good Friday
    ("2026-12-25T10:00:00+00:00", False),  # Christmas Day
    ("2026-12-28T10:00:00+00:00", False),  # Boxing Day, substitute day
    ("2026-12-29T08:00:00+00:00", True),
]


@pytest.mark.parametrize(("moment", "expected"), OPENING)
def test_office_hours_are_08_to_18_local_on_working_days(moment: str, expected: bool) -> None:
    book = book_with()
    with freeze_time(moment):
        assert in_office_hours(book, datetime.now(UTC)) is expected


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        ("2026-03-07T12:00:00+00:00", True),  # Saturday
        ("2026-12-25T10:00:00+00:00", True),  # Christmas Day
        ("2026-03-07T07:59:00+00:00", False),  # still only in office hours
        ("2026-06-06T17:00:00+00:00", False),  # Saturday 18:00 BST
    ],
)
def test_days_all_opens_every_day_within_office_hours(moment: str, expected: bool) -> None:
    with freeze_time(moment):
        assert in_office_hours(book_with(days="all"), datetime.now(UTC)) is expected


def test_office_hours_and_closure_days_come_from_the_policy() -> None:
    book = book_with(office_hours={"start": "09:30", "end": "16:00"})
    opened = [
        in_office_hours(book, datetime.fromisoformat(f"2026-03-02T{t}+00:00"))
        for t in ("09:29:59", "09:30:00", "15:59:59", "16:00:00")
    ]
    assert opened == [False, True, True, False]

    data = yaml.safe_load(DEFAULT_POLICY_FILE.read_text(encoding="utf-8"))
    data["calendar"]["closure_days"] = ["2026-12-24"]
    closed = Rulebook.build(parse_policy(data), LONDON)
    assert in_office_hours(closed, datetime(2026, 12, 24, 10, tzinfo=UTC)) is False
    assert in_office_hours(book_with(), datetime(2026, 12, 24, 10, tzinfo=UTC)) is True


def test_a_naive_datetime_is_refused_not_read_as_the_machine_local_time() -> None:
    # caseloop compares aware UTC instants only (workflow.timeutil refuses naive ones).
    with pytest.raises(ValueError, match="naive"):
        in_office_hours(book_with(), datetime(2026, 3, 2, 9, 0))


DST_SUNDAYS = [date(2026, 3, 29), date(2026, 10, 25)]


def local(day: date, at: time, fold: int = 0) -> datetime:
    return datetime.combine(day, at, LONDON).replace(fold=fold).astimezone(UTC)


def quarter_hours(sunday: date) -> list[datetime]:
    """Every 15 minutes (in UTC) from Saturday 00:00 to Monday 12:00 local."""
    moments, now = [], local(sunday - timedelta(days=1), time(0))
    while now <= local(sunday + timedelta(days=1), time(12)):
        moments.append(now)
        now += timedelta(minutes=15)
    return moments


@pytest.mark.parametrize("sunday", DST_SUNDAYS, ids=str)
def test_over_a_dst_weekend_the_first_opening_is_monday_0800_local(sunday: date) -> None:
    book, moments = book_with(), quarter_hours(sunday)
    opened = []
    with freeze_time(moments[0]) as frozen:
        for moment in moments:
            frozen.move_to(moment)
            if in_office_hours(book, datetime.now(UTC)):
                opened.append(datetime.now(UTC))
    monday = sunday + timedelta(days=1)
    assert opened[0] == local(monday, time(8))
    assert len(opened) == 17  # 08:00 to 12:00 on Monday, and nothing on Saturday or Sunday
    wall = datetime.combine(sunday, time(1, 30))
    at_0130 = [m for m in moments if m.astimezone(LONDON).replace(tzinfo=None) == wall]
    assert len(at_0130) == (0 if sunday.month == 3 else 2)  # 01:30 does not exist / happens twice
