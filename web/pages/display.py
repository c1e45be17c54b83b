"""How pages write dates, times and counts of working days (GOV.UK style: "3 November 2026").

Instants are shown in the council's time zone (the rulebook's), never in UTC.
"""

from __future__ import annotations

from datetime import date, datetime

from services.runtime import Runtime


def long_date(day: date | None) -> str:
    return f"{day.day} {day:%B %Y}" if day else ""


def local_time(rt: Runtime, instant: datetime | None) -> str:
    """An instant as the council's local date and time, e.g. "3 November 2026, 10:05"."""
    if instant is None:
        return ""
    local = instant.astimezone(rt.book.zone)
    return f"{long_date(local.date())}, {local:%H:%M}"


def working_days(n: int) -> str:
    return f"{n} working day{'s' if n != 1 else ''}"
