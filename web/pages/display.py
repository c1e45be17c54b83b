"""How pages write dates, times, counts of working days and case addresses (GOV.UK style:
"3 November 2026"). Instants are shown in the council's time zone (the rulebook's), never in UTC.
"""

from __future__ import annotations

from datetime import date, datetime
from urllib.parse import quote

from services.runtime import Runtime


def long_date(day: date | None) -> str:
    """A date as GOV.UK writes it: 3 November 2026."""
    return f"{day.day} {day:%B %Y}" if day else ""


def clock_time(local: datetime) -> str:
    """An instant already in the council's time zone: 3 November 2026, 10:05."""
    return f"{long_date(local.date())}, {local:%H:%M}"


def local_time(rt: Runtime, instant: datetime | None) -> str:
    """An instant as the council's local date and time, e.g. "3 November 2026, 10:05"."""
    return clock_time(instant.astimezone(rt.book.zone)) if instant is not None else ""


def working_days(n: int) -> str:
    return f"{n} working day{'s' if n != 1 else ''}"


def case_link(ref: str) -> str:
    """The address of a case's timeline, its reference quoted whole (a ``/`` in it included)."""
    return "/cases/" + quote(ref, safe="")
