"""WorkingCalendar (GB/ENG by default): bank holidays, the counting rule, closures and month goals."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workflow.calendar import CountingRule, WorkingCalendar, add_calendar_months
from workflow.errors import PolicyError

ENG = WorkingCalendar()
ENG_DAY1 = WorkingCalendar(counting=CountingRule.DAY1)
SCT = WorkingCalendar(subdivision="SCT")

# Published England and Wales bank holidays that fall on a weekday (gov.uk), substitutes included.
PUBLISHED_WEEKDAY_HOLIDAYS: dict[int, set[date]] = {
    2022: {
        date(2022, 1, 3),
        date(2022, 4, 15),
        date(2022, 4, 18),
        date(2022, 5, 2),
        date(2022, 6, 2),
        date(2022, 6, 3),
        date(2022, 8, 29),
        date(2022, 9, 19),
        date(2022, 12, 26),
        date(2022, 12, 27),
    },
    2023: {
        date(2023, 1, 2),
        date(2023, 4, 7),
        date(2023, 4, 10),
        date(2023, 5, 1),
        date(2023, 5, 8),
        date(2023, 5, 29),
        date(2023, 8, 28),
        date(2023, 12, 25),
        date(2023, 12, 26),
    },
    2026: {
        date(2026, 1, 1),
        date(2026, 4, 3),
        date(2026, 4, 6),
        date(2026, 5, 4),
        date(2026, 5, 25),
        date(2026, 8, 31),
        date(2026, 12, 25),
        date(2026, 12, 28),
    },
    2027: {
        date(2027, 1, 1),
        date(2027, 3, 26),
        date(2027, 3, 29),
        date(2027, 5, 3),
        date(2027, 5, 31),
        date(2027, 8, 30),
        date(2027, 12, 27),
        date(2027, 12, 28),
    },
}
ALL_PUBLISHED = sorted(d for days in PUBLISHED_WEEKDAY_HOLIDAYS.values() for d in days)


def _weekdays(year: int) -> list[date]:
    day, out = date(year, 1, 1), []
    while day.year == year:
        if day.weekday() < 5:
            out.append(day)
        day += timedelta(days=1)
    return out


# (a) fixed cases --------------------------------------------------------------------------------


@pytest.mark.parametrize("day", ALL_PUBLISHED, ids=str)
def test_published_bank_holiday_is_not_a_working_day(day: date) -> None:
    assert day.weekday() < 5  # a weekday, so only the holiday makes it a non-working day
    assert ENG.is_bank_holiday(day)
    assert not ENG.is_working_day(day)
    assert ENG.holiday_name(day) is not None


@pytest.mark.parametrize("year", sorted(PUBLISHED_WEEKDAY_HOLIDAYS))
def test_weekday_holidays_are_exactly_the_published_ones(year: int) -> None:
    non_working = {d for d in _weekdays(year) if not ENG.is_working_day(d)}
    assert non_working == PUBLISHED_WEEKDAY_HOLIDAYS[year]


def test_weekends_are_not_working_days_and_ordinary_weekdays_are() -> None:
    assert not ENG.is_working_day(date(2026, 1, 3))  # Saturday
    assert not ENG.is_working_day(date(2026, 1, 4))  # Sunday
    assert ENG.is_working_day(date(2026, 1, 5))  # Monday
    assert ENG.holiday_name(date(2026, 1, 5)) is None


@pytest.mark.parametrize(
    ("start", "n", "due"),
    [
        (date(2026, 12, 24), 1, date(2026, 12, 29)),  # Christmas, Boxing Day substitute on Mon 28th
        (date(2026, 4, 2), 1, date(2026, 4, 7)),  # Easter 2026: Good Friday, Easter Monday
        (date(2027, 3, 25), 1, date(2027, 3, 30)),  # Easter 2027
        (date(2027, 12, 24), 1, date(2027, 12, 29)),  # Christmas 2027: substitutes on 27th and 28th
        (date(2022, 6, 1), 1, date(2022, 6, 6)),  # Platinum Jubilee 2-3 June 2022
        (date(2022, 9, 16), 1, date(2022, 9, 20)),  # State funeral 19 Sep 2022
        (date(2023, 5, 5), 1, date(2023, 5, 9)),  # Coronation 8 May 2023
        (date(2026, 12, 1), 45, date(2027, 2, 5)),  # 45 WD over Christmas and New Year
        (date(2026, 12, 10), 15, date(2027, 1, 5)),  # 15 WD over Christmas and New Year
        (date(2026, 1, 5), 15, date(2026, 1, 26)),  # 15 WD, three plain weeks
        (date(2026, 3, 2), 45, date(2026, 5, 7)),  # 45 WD over Easter and the May Day holiday
    ],
    ids=str,
)
def test_due_dates_day0(start: date, n: int, due: date) -> None:
    assert ENG.add_working_days(start, n) == due
    assert ENG.working_days_between(start, due) == n


# (b) the counting rule --------------------------------------------------------------------------


def test_day0_start_never_counts() -> None:
    monday = date(2026, 1, 5)
    assert ENG.add_working_days(monday, 1) == date(2026, 1, 6)
    assert ENG.add_working_days(monday, 5) == date(2026, 1, 12)
    assert ENG.add_working_days(monday, 0) == monday


def test_day1_working_start_counts_as_day_one() -> None:
    monday = date(2026, 1, 5)
    assert ENG_DAY1.add_working_days(monday, 1) == monday
    assert ENG_DAY1.add_working_days(monday, 2) == date(2026, 1, 6)
    assert ENG_DAY1.add_working_days(date(2026, 12, 1), 45) == date(2027, 2, 4)
    assert ENG_DAY1.add_working_days(monday, 0) == monday


@pytest.mark.parametrize(
    ("start", "due"),
    [
        (date(2026, 1, 3), date(2026, 1, 5)),  # Saturday: nothing to count until Monday
        (date(2026, 4, 6), date(2026, 4, 7)),  # Easter Monday
        (date(2026, 12, 25), date(2026, 12, 29)),  # Christmas Day
    ],
    ids=str,
)
def test_day1_non_working_start_counts_like_day0(start: date, due: date) -> None:
    assert ENG_DAY1.add_working_days(start, 1) == due
    assert ENG.add_working_days(start, 1) == due


@pytest.mark.parametrize("cal", [ENG, ENG_DAY1], ids=["day0", "day1"])
def test_negative_goal_is_refused(cal: WorkingCalendar) -> None:
    with pytest.raises(ValueError, match="negative"):
        cal.add_working_days(date(2026, 1, 5), -1)


def test_working_days_between_counts_after_start_up_to_end() -> None:
    assert ENG.working_days_between(date(2026, 1, 5), date(2026, 1, 5)) == 0
    assert ENG.working_days_between(date(2026, 1, 9), date(2026, 1, 5)) == 0
    assert ENG.working_days_between(date(2026, 1, 2), date(2026, 1, 5)) == 1  # Fri -> Mon
    assert ENG.working_days_between(date(2026, 12, 24), date(2027, 1, 4)) == 4  # 29, 30, 31, 4


# (c) council closure days -----------------------------------------------------------------------


def test_closure_days_are_skipped() -> None:
    closed = WorkingCalendar(closure_days=frozenset({date(2026, 12, 24), date(2026, 12, 31)}))
    assert not closed.is_working_day(date(2026, 12, 24))
    assert not closed.is_bank_holiday(date(2026, 12, 24))
    assert closed.holiday_name(date(2026, 12, 24)) == "council closure day"
    assert closed.holiday_name(date(2026, 12, 25)) == "Christmas Day"
    assert closed.add_working_days(date(2026, 12, 23), 1) == date(2026, 12, 29)
    assert closed.add_working_days(date(2026, 12, 30), 1) == date(2027, 1, 4)
    assert closed.working_days_between(date(2026, 12, 23), date(2027, 1, 4)) == 3
    assert ENG.working_days_between(date(2026, 12, 23), date(2027, 1, 4)) == 5


# (d) properties of the arithmetic ---------------------------------------------------------------

starts = st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31))
goals = st.integers(min_value=1, max_value=120)
offsets = st.frozensets(st.integers(min_value=0, max_value=90), max_size=15)
PROPS = settings(deadline=None, max_examples=150)


@PROPS
@given(start=starts, n=goals, near=offsets)
def test_due_date_is_a_working_day(start: date, n: int, near: frozenset[int]) -> None:
    closure = frozenset(start + timedelta(days=k) for k in near)
    for rule in CountingRule:
        cal = WorkingCalendar(closure_days=closure, counting=rule)
        due = cal.add_working_days(start, n)
        assert cal.is_working_day(due)
        assert due not in closure


@PROPS
@given(start=starts, n=goals)
def test_day0_due_is_strictly_after_start_and_round_trips(start: date, n: int) -> None:
    due = ENG.add_working_days(start, n)
    assert due > start
    assert ENG.working_days_between(start, due) == n
    # no working day is skipped: the day before the due date is still short of the goal
    assert ENG.working_days_between(start, due - timedelta(days=1)) == n - 1


@PROPS
@given(start=starts, n=st.integers(min_value=0, max_value=120))
def test_day0_is_strictly_monotonic_in_n(start: date, n: int) -> None:
    assert ENG.add_working_days(start, n) < ENG.add_working_days(start, n + 1)


@PROPS
@given(start=starts, n=goals)
def test_day1_is_monotonic_and_never_before_start(start: date, n: int) -> None:
    due = ENG_DAY1.add_working_days(start, n)
    assert due >= start
    assert ENG_DAY1.add_working_days(start, n - 1) <= due < ENG_DAY1.add_working_days(start, n + 1)


@PROPS
@given(start=starts, n=goals)
def test_day1_is_day0_one_shorter_on_a_working_start(start: date, n: int) -> None:
    shift = 1 if ENG.is_working_day(start) else 0
    assert ENG_DAY1.add_working_days(start, n) == ENG.add_working_days(start, n - shift)


@PROPS
@given(start=starts, a=st.integers(0, 80), b=st.integers(0, 80))
def test_day0_adding_is_additive(start: date, a: int, b: int) -> None:
    assert ENG.add_working_days(start, a + b) == ENG.add_working_days(ENG.add_working_days(start, a), b)


# (e) calendar months ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "months", "due"),
    [
        (date(2026, 1, 15), 3, date(2026, 4, 15)),
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),  # leap year
        (date(2024, 2, 29), 12, date(2025, 2, 28)),  # from a leap day
        (date(2024, 2, 29), 48, date(2028, 2, 29)),
        (date(2026, 3, 31), 1, date(2026, 4, 30)),
        (date(2026, 8, 31), 6, date(2027, 2, 28)),  # rollover and clamp
        (date(2026, 11, 30), 3, date(2027, 2, 28)),
        (date(2026, 12, 10), 1, date(2027, 1, 10)),  # year rollover
        (date(2026, 10, 5), 6, date(2027, 4, 5)),
        (date(2026, 6, 1), 36, date(2029, 6, 1)),
    ],
    ids=str,
)
def test_add_calendar_months(start: date, months: int, due: date) -> None:
    assert add_calendar_months(start, months) == due


@given(start=st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31)), months=st.integers(1, 36))
def test_add_calendar_months_keeps_the_day_or_clamps(start: date, months: int) -> None:
    due = add_calendar_months(start, months)
    assert (due.year * 12 + due.month) - (start.year * 12 + start.month) == months
    if due.day != start.day:
        assert due.day < start.day
        assert (due + timedelta(days=1)).day == 1  # clamped to the month's last day


# (f) fingerprint --------------------------------------------------------------------------------


def test_fingerprint_is_stable_for_the_same_configuration() -> None:
    a = WorkingCalendar(closure_days=frozenset({date(2026, 12, 24), date(2026, 12, 31)}))
    b = WorkingCalendar(closure_days=frozenset({date(2026, 12, 31), date(2026, 12, 24)}))
    assert a.fingerprint == b.fingerprint
    assert WorkingCalendar().fingerprint == ENG.fingerprint
    assert len(ENG.fingerprint) == 12
    int(ENG.fingerprint, 16)


@pytest.mark.parametrize(
    "changed",
    [
        WorkingCalendar(closure_days=frozenset({date(2026, 12, 24)})),
        WorkingCalendar(closure_days=frozenset({date(2026, 12, 31)})),
        WorkingCalendar(counting=CountingRule.DAY1),
        WorkingCalendar(subdivision="SCT"),
        WorkingCalendar(subdivision="NIR"),
    ],
    ids=["closure-24", "closure-31", "day1", "SCT", "NIR"],
)
def test_fingerprint_changes_with_what_decides_a_due_date(changed: WorkingCalendar) -> None:
    assert changed.fingerprint != ENG.fingerprint


def test_fingerprints_of_different_closure_sets_differ() -> None:
    one = WorkingCalendar(closure_days=frozenset({date(2026, 12, 24)}))
    two = WorkingCalendar(closure_days=frozenset({date(2026, 12, 24), date(2026, 12, 31)}))
    assert one.fingerprint != two.fingerprint


# (g) subdivisions -------------------------------------------------------------------------------


@pytest.mark.parametrize(("country", "subdivision"), [("GB", "XX"), ("GB", "eng"), ("ZZ", "ENG")])
def test_unknown_country_or_subdivision_is_a_policy_error(country: str, subdivision: str) -> None:
    with pytest.raises(PolicyError, match=f"{country}/{subdivision}"):
        WorkingCalendar(country=country, subdivision=subdivision)


def test_scotland_has_other_bank_holidays() -> None:
    assert not SCT.is_working_day(date(2026, 1, 2))  # 2 January
    assert ENG.is_working_day(date(2026, 1, 2))
    assert SCT.is_working_day(date(2026, 4, 6))  # no Easter Monday in Scotland
    assert not SCT.is_working_day(date(2026, 8, 3))  # summer holiday is the first Monday of August
    assert SCT.is_working_day(date(2026, 8, 31))
    assert not SCT.is_working_day(date(2026, 11, 30))  # St Andrew's Day
    assert ENG.is_working_day(date(2026, 11, 30))
    assert ENG.add_working_days(date(2025, 12, 31), 1) == date(2026, 1, 2)
    assert SCT.add_working_days(date(2025, 12, 31), 1) == date(2026, 1, 5)
