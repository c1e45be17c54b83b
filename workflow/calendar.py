"""The working-day calendar: weekends, bank holidays and the council's own closure days.

Counting follows the council's rule (domain: clocks). Under the default ``day0`` rule the start
date is day 0 and never counts, and the due date is the Nth working day after it. Under ``day1``
(used by some validators) the start date is day 1 when it is itself a working day.
"""

from __future__ import annotations

import calendar as _stdlib_calendar
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from functools import cached_property
from importlib.metadata import version

import holidays

from workflow.errors import PolicyError

# The version of the rules that turn a goal into a date, part of the fingerprint so that a change
# recalculates running clocks. 2: a calendar-month goal that lands on a non-working day falls due
# on the working day before (a review conference cannot be held on a Sunday).
DUE_DATE_RULES = "2"


class CountingRule(StrEnum):
    DAY0 = "day0"
    DAY1 = "day1"


@dataclass(frozen=True)
class WorkingCalendar:
    """Which dates are working days, and arithmetic over them.

    ``country`` and ``subdivision`` select the bank holidays from the ``holidays`` package; for
    England pass ``GB``/``ENG`` (Scotland and Northern Ireland have other days).
    """

    country: str = "GB"
    subdivision: str = "ENG"
    closure_days: frozenset[date] = field(default_factory=frozenset)
    counting: CountingRule = CountingRule.DAY0

    def __post_init__(self) -> None:
        try:
            holidays.country_holidays(self.country, subdiv=self.subdivision, years=2026)
        except NotImplementedError as exc:
            raise PolicyError(
                f"calendar.subdivision: the holidays package knows no country/subdivision "
                f"{self.country}/{self.subdivision}"
            ) from exc

    @cached_property
    def _bank_holidays(self) -> holidays.HolidayBase:
        # Years are filled in lazily by the holidays package as dates are looked up.
        return holidays.country_holidays(self.country, subdiv=self.subdivision)

    @cached_property
    def fingerprint(self) -> str:
        """A short stable id of everything that decides a due date, to detect calendar changes."""
        parts = [
            self.country,
            self.subdivision,
            self.counting.value,
            DUE_DATE_RULES,
            version("holidays"),
            *sorted(d.isoformat() for d in self.closure_days),
        ]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]

    def is_bank_holiday(self, day: date) -> bool:
        return day in self._bank_holidays

    def holiday_name(self, day: date) -> str | None:
        name = self._bank_holidays.get(day)
        if name is not None:
            return str(name)
        return "council closure day" if day in self.closure_days else None

    @cached_property
    def _due_dates(self) -> dict[tuple[date, int], date]:
        # Due dates already counted, by start and working days: the calendar never changes, and an
        # import counts the same few from the same few days thousands of times.
        return {}

    @cached_property
    def _working(self) -> dict[date, bool]:
        return {}  # days already looked up, for the same reason

    def is_working_day(self, day: date) -> bool:
        known = self._working.get(day)
        if known is None:
            if len(self._working) >= _REMEMBERED:
                self._working.clear()
            known = self._working[day] = (
                day.weekday() < 5 and day not in self.closure_days and day not in self._bank_holidays
            )
        return known

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after ``day``."""
        day += timedelta(days=1)
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day

    def on_or_before(self, day: date) -> date:
        """``day`` if it is a working day, else the last working day before it."""
        while not self.is_working_day(day):
            day -= timedelta(days=1)
        return day

    def add_working_days(self, start: date, n: int) -> date:
        """The due date of an ``n`` working-day goal started on ``start``, under the counting rule."""
        if n < 0:
            raise ValueError("a goal cannot be a negative number of working days")
        if n == 0:
            return start
        due = self._due_dates.get((start, n))
        if due is None:
            if len(self._due_dates) >= _REMEMBERED:
                self._due_dates.clear()
            due = self._due_dates[start, n] = self._count(start, n)
        return due

    def _count(self, start: date, n: int) -> date:
        if self.counting is CountingRule.DAY1 and self.is_working_day(start):
            n -= 1
            if n == 0:
                return start
        day = start
        for _ in range(n):
            day = self.next_working_day(day)
        return day

    def working_days_between(self, start: date, end: date) -> int:
        """Working days after ``start`` up to and including ``end`` (0 when ``end <= start``)."""
        if end <= start:
            return 0
        # A queue's page asks this of one day (today) against a few dates, row after row: each
        # pair is counted once (day by day, against the holidays) and then remembered.
        known = self._between.get((start, end))
        if known is None:
            if len(self._between) >= _REMEMBERED:
                self._between.clear()
            known = sum(1 for d in _dates(start + timedelta(days=1), end) if self.is_working_day(d))
            self._between[(start, end)] = known
        return known

    @cached_property
    def _between(self) -> dict[tuple[date, date], int]:
        return {}


# How many counts of working days (and due dates, and days looked up) a calendar remembers (a
# few years of queues' dates).
_REMEMBERED = 4096


def _dates(first: date, last: date) -> Iterable[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def add_calendar_months(start: date, months: int) -> date:
    """Same day number ``months`` later, or that month's last day where the day does not exist."""
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    last = _stdlib_calendar.monthrange(year, month)[1]
    return date(year, month, min(start.day, last))
