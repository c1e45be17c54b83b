"""What was sent, kept: each form of a message as its attempt handed it over, and its hash.

A sent letter is shown from here, never rendered again: the case has moved on since (a new
address, a new worker, another date), so a fresh rendering would show a letter nobody got. The
hash is checked on every read, so a stored copy that has been changed is reported, not shown.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from messaging.email import OutgoingEmail
from messaging.letter import OutgoingLetter
from messaging.outbox import SentContent
from workflow.errors import CaseloopError, NotFound

Form = Literal["text", "html", "pdf"]


class StoredContentAltered(CaseloopError):
    """A stored copy of what was sent no longer matches the hash taken when it was sent."""


def sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def forms(outgoing: OutgoingEmail | OutgoingLetter) -> dict[str, bytes]:
    found = {"text": outgoing.text.encode("utf-8"), "html": outgoing.html.encode("utf-8")}
    if isinstance(outgoing, OutgoingLetter):
        found["pdf"] = outgoing.pdf
    return found


def keep(
    session: Session, outbox_id: int, attempt: int, outgoing: OutgoingEmail | OutgoingLetter, at: datetime
) -> None:
    """Store what attempt ``attempt`` is about to hand over (replacing an earlier attempt's)."""
    # An earlier attempt's copies, read in one query (none on a first attempt, the usual one).
    kept = {
        row.form: row
        for row in session.scalars(select(SentContent).where(SentContent.outbox_id == outbox_id))
    }
    for form, body in forms(outgoing).items():
        row = kept.get(form)
        if row is None:
            row = SentContent(outbox_id=outbox_id, form=form)
            session.add(row)
        row.attempt, row.body, row.sha256, row.stored_at = attempt, body, sha256(body), at


def stored(session: Session, outbox_id: int, form: Form) -> SentContent:
    """The stored ``form`` of message ``outbox_id``, checked against its hash."""
    row = session.get(SentContent, (outbox_id, form))
    if row is None:
        raise NotFound(f"outbox {outbox_id}: no {form} copy of what was sent is stored")
    if sha256(row.body) != row.sha256:
        raise StoredContentAltered(
            f"outbox {outbox_id}: the stored {form} copy does not match the SHA-256 taken when it was "
            f"sent ({row.sha256[:12]}…): it has been changed since; it is not shown"
        )
    return row
