"""Outgoing messages described in plain words for the pages: what a message is, and how it goes.

The outbox keeps keys (``family_decision_easy_read``, ``reminder_digest``) and, for letters, the
medium in the payload; staff read "Family decision (easy read)" and "Post".
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, String, case, literal

from messaging.outbox import OutboxMessage
from workflow.clocks import Rulebook
from workflow.reminders import DIGEST_KIND

EASY_READ = "_easy_read"
MEDIA = ("email", "post")
MEDIUM_WORDS = {"email": "Email", "post": "Post"}


def kind_in_words(kind: str) -> str:
    """A message's kind as staff say it: a letter template's key, or the staff digest."""
    if kind == DIGEST_KIND:
        return "Reminder digest to staff"
    easy_read = kind.endswith(EASY_READ)
    base = kind.removesuffix(EASY_READ).replace("_", " ").capitalize()
    return f"{base} (easy read)" if easy_read else base


def duty_in_words(book: Rulebook, duty: str | None) -> str | None:
    """The duty a letter fulfils, by the policy's label (None for a staff digest)."""
    if duty is None:
        return None
    rule = book.policy.duty(duty)
    return rule.label if rule is not None else duty


def medium_of(duty: str | None, payload: dict[str, Any] | None) -> str:
    """``email`` or ``post``: a letter's medium is in its payload; a staff digest is an email."""
    if duty is None:
        return "email"
    medium = (payload or {}).get("medium")
    return str(medium) if medium in MEDIA else "email"


def medium_sql() -> ColumnElement[str]:
    """:func:`medium_of` in SQL, for filters: JSON extraction works alike on SQLite and PostgreSQL."""
    return case(
        (OutboxMessage.duty.is_(None), literal("email", String)),
        else_=OutboxMessage.payload["medium"].as_string(),
    )
