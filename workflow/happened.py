"""What the domain announces (past tense), for messaging and the services to act on.

Each carries the rows involved: events live only within the transaction that published them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from workflow.model import Case
from workflow.staff import Staff


@dataclass(frozen=True)
class Recipient:
    """Who a duty's letter goes to, and how."""

    key: str  # person id, "referrer" or "school"
    role: str  # family | referrer | school
    medium: str  # email | post
    address: str
    template: str


@dataclass(frozen=True)
class LetterOwed:
    """A duty fired: ``recipient`` is owed ``duty``'s letter because of event ``event_id``."""

    case: Case
    duty: str
    recipient: Recipient
    channel: str
    event_id: str
    at: datetime
    received_id: int | None
    holds: tuple[str, ...]  # why a person must review it first (empty: none)


@dataclass(frozen=True)
class RiskCameToLight:
    """Domestic abuse or a confidential address is now known: waiting letters must be held."""

    case: Case
    reasons: tuple[str, ...]
    at: datetime
    received_id: int | None
    # After a death or an adoption even letters a person already approved are read again.
    approvals_lapse: bool = False


@dataclass(frozen=True)
class DutyDoneByHand:
    """The council recorded ``duty`` as done another way: its unsent letters are not owed."""

    case: Case
    duty: str
    event_id: str
    at: datetime
    received_id: int | None


@dataclass(frozen=True)
class LettersWithdrawn:
    """The decision that made these duties owed was amended: their unsent letters are not owed."""

    case: Case
    duties: tuple[str, ...]
    why: str
    at: datetime
    received_id: int | None


@dataclass(frozen=True)
class DigestOwed:
    """``person`` is owed one digest listing these reminder items."""

    person: Staff
    item_ids: tuple[int, ...]  # the reminder items the digest lists


@dataclass(frozen=True)
class DigestsOwed:
    """The reminders for ``day`` were planned: each person in ``digests`` is owed one digest.

    One event for the day rather than one a person, so its handler writes the day's digests a
    statement per table instead of a few round trips per digest (thousands of them in a borough).
    """

    day: date
    digests: tuple[DigestOwed, ...]
    channel: str
    at: datetime
