"""How long each value of an event may be, so that nothing accepted can break a later event.

Limits come from the column a value is stored in where there is one, so a column and its limit
cannot drift apart. Values kept only in JSON columns (names, addresses) have sane limits of their
own; the outbox's columns are sized at least as large (a unit test checks), because a value that
fits today's event but not a later letter's row would fail every later event of its case.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import String

from workflow.model import Case, ReceivedEvent


def column_length(model: Any, name: str) -> int:
    """The declared length of a ``String`` column of ``model``."""
    kind = model.__table__.c[name].type
    if not isinstance(kind, String) or kind.length is None:
        raise TypeError(f"{model.__name__}.{name} is not a String column with a length")
    return int(kind.length)


EVENT_ID = column_length(ReceivedEvent, "event_id")
CASE_REF = column_length(Case, "ref")
TEAM = column_length(Case, "team")
STAFF_ID = column_length(Case, "worker")
CODE = 64  # a short word or code: a relationship, a flag, a duty or clock name
# A letter's idempotency key is "duty:event id:person id" in 255 characters.
PERSON_ID = 48
NAME = 200  # a person's or an organisation's name
ADDRESS = 320  # a postal address, the outbox's address column
EMAIL = 254  # RFC 5321: a path of 256 octets, less its angle brackets
WORDS = 500  # a reason given in words
LIST = 50  # members of a household, flags, assessment factors

# Whole lines, before any field is looked at.
LINE_BYTES = 256 * 1024  # a referral with a household of 50 needs a small part of this
NESTING = 10  # objects and arrays inside each other (an event needs 4)
DIGITS = 15  # the longest number an event may hold (an outbox id)


def fitting_id(*parts: str) -> str:
    """An event id caseloop makes from other values (``caseloop:duty:event id``): the parts
    joined by colons when that fits :data:`EVENT_ID`, otherwise cut short and ended with a digest
    of the whole, so the same parts always make the same id and different parts different ones."""
    whole = ":".join(parts)
    if len(whole) <= EVENT_ID:
        return whole
    digest = hashlib.sha256(whole.encode()).hexdigest()[:40]
    return f"{whole[: EVENT_ID - len(digest) - 1]}:{digest}"
