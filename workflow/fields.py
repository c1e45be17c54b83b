"""The kinds of value an event's fields hold, each with its limit and its rules.

Every model of :mod:`workflow.events` builds on these, so a new event inherits the rules by
using them: text is stripped, never empty, at most its limit long, and free of control
characters. Only an address and a reason given in words may span lines (an address is printed as
lines; a reason may be pasted from a note); a newline anywhere else would break a header, a CSV
export or a line of a letter. Instants and dates must be plausible, so that converting them to
UTC or to local time cannot overflow.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, StringConstraints

from workflow import limits

# C0 and C1 controls, unpaired surrogates, line and paragraph separators, and the invisible
# marks that reorder text on screen (a name that displays differently from how it sorts).
_UNSAFE_BUT_NEWLINE = "\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff"
_UNSAFE_LINES = re.compile(f"[{_UNSAFE_BUT_NEWLINE}]")
_UNSAFE_ONE_LINE = re.compile(f"[\n{_UNSAFE_BUT_NEWLINE}]")


def describe(char: str) -> str:
    return f"U+{ord(char):04X}"


def _one_line(value: str) -> str:
    found = _UNSAFE_ONE_LINE.search(value)
    if found:
        where = f"at character {found.start() + 1}"
        if found.group() in "\r\n":
            raise ValueError(f"has a line break {where}: only an address or a reason may span lines")
        raise ValueError(f"has the control character {describe(found.group())} {where}")
    return value


def _lines(value: str) -> str:
    value = value.replace("\r\n", "\n")
    found = _UNSAFE_LINES.search(value)
    if found:
        raise ValueError(
            f"has the control character {describe(found.group())} at character {found.start() + 1}"
        )
    return value


def printable(text: str) -> str:
    """``text`` on one line with every unsafe character made a space (for text caseloop writes
    itself into an event, such as a provider's error)."""
    return " ".join(_UNSAFE_ONE_LINE.sub(" ", text).split())


def _strip(max_length: int) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length)


_ONE_LINE = AfterValidator(_one_line)
_LINES = AfterValidator(_lines)

Text = Annotated[str, _strip(limits.CODE), _ONE_LINE]
"""A short word, code or id (the tightest column); use the kinds below for longer text."""
EventId = Annotated[str, _strip(limits.EVENT_ID), _ONE_LINE]
CaseRef = Annotated[str, _strip(limits.CASE_REF), _ONE_LINE]
Team = Annotated[str, _strip(limits.TEAM), _ONE_LINE]
StaffId = Annotated[str, _strip(limits.STAFF_ID), _ONE_LINE]
PersonId = Annotated[str, _strip(limits.PERSON_ID), _ONE_LINE]
Name = Annotated[str, _strip(limits.NAME), _ONE_LINE]
Address = Annotated[str, _strip(limits.ADDRESS), _LINES]
Words = Annotated[str, _strip(limits.WORDS), _LINES]


# Addresses caseloop can send to: a dot-atom local part and a domain name, in ASCII, because the
# SMTP channel does not ask servers for SMTPUTF8 (a server without it would refuse the message).
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def _email(value: str) -> str:
    _one_line(value)
    if not value.isascii():
        raise ValueError(
            "is an internationalised (non-ASCII) address, which caseloop cannot send: "
            "give an ASCII address or none"
        )
    if value.count("@") != 1:
        raise ValueError("must be one email address, such as name@example.org, with no display name")
    local, domain = value.rsplit("@", 1)
    if len(local) > 64 or not _LOCAL.match(local):
        raise ValueError("must be one email address: the part before @ is not a plain mailbox name")
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels) or labels[-1].isdigit():
        raise ValueError("must be one email address: the part after @ is not a domain name")
    return value


Email = Annotated[str, _strip(limits.EMAIL), AfterValidator(_email)]

# Events are dated in caseloop's lifetime; a year such as 1 or 9999 is a mistake, and the
# conversion to UTC or to local time would overflow. Checked on the wall time as given, before
# any conversion.
FIRST_YEAR, LAST_YEAR = 2000, 2099
OLDEST_BIRTH_YEAR = 1900


def _plausible_instant(value: datetime) -> datetime:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"the year {value.year} is outside {FIRST_YEAR}–{LAST_YEAR}")
    return value


def _plausible_birth(value: date) -> date:
    if value.year < OLDEST_BIRTH_YEAR or value.year > LAST_YEAR:
        raise ValueError(f"the year {value.year} is not a plausible year of birth")
    return value


Instant = Annotated[AwareDatetime, AfterValidator(_plausible_instant)]
BirthDate = Annotated[date, AfterValidator(_plausible_birth)]
