"""Calendar months as the figures and the audit count them: ``YYYY-MM``, on local dates."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from workflow.errors import Invalid

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
NAMES = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        """``YYYY-MM``, or :class:`Invalid` saying what was expected."""
        found = _MONTH.match(text.strip())
        if not found or not 1 <= int(found.group(2)) <= 12 or not 2000 <= int(found.group(1)) <= 2999:
            raise Invalid(f"{text!r} is not a month written as YYYY-MM, such as 2026-11")
        return cls(int(found.group(1)), int(found.group(2)))

    @classmethod
    def of(cls, day: date) -> Month:
        return cls(day.year, day.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    def plus(self, months: int) -> Month:
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)

    def months_until(self, last: Month) -> list[Month]:
        """This month and each after it up to ``last`` (empty if ``last`` is earlier)."""
        count = (last.year - self.year) * 12 + last.month - self.month + 1
        return [self.plus(n) for n in range(max(count, 0))]

    @property
    def label(self) -> str:
        """In words: ``November 2026``."""
        return f"{NAMES[self.month - 1]} {self.year}"

    @property
    def short(self) -> str:
        """For a chart's axis: ``Nov``."""
        return NAMES[self.month - 1][:3]
