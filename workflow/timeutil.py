"""Time, kept deliberately: instants are aware UTC datetimes; deadlines are local dates."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def fixed_clock(instant: datetime) -> Clock:
    """A clock that always reads ``instant`` (the CLI's ``--now``)."""
    if instant.tzinfo is None:
        raise ValueError("a fixed time must carry a UTC offset")
    instant = instant.astimezone(UTC)
    return lambda: instant


def local_date(instant: datetime, zone: ZoneInfo) -> date:
    """The council's calendar date at ``instant``."""
    if instant.tzinfo is None:
        raise ValueError("refusing a naive datetime: caseloop stores and compares aware UTC instants")
    return instant.astimezone(zone).date()
