"""The outbox lifecycle, declared once: every status a message can be in and every allowed move.

Nothing else sets ``OutboxMessage.status``. :func:`move` looks the move up in :data:`MOVES`,
refuses one that is not there with :class:`IllegalMove`, and writes the audit row (for the moves
a person may ask about) in the caller's transaction. Entering ``sent`` or ``failed`` publishes
:class:`MessageSent` or :class:`MessageFailed`, which is how a duty learns that its letter went
or a worker gets a task for one that did not: no hooks to remember at each call site.

``failed``, ``rejected`` and ``cancelled`` are final. The one way out of ``failed`` is a
correction that names its reason (a provider's late receipt proving the letter arrived).
``caseloop workflow diagram --outbox`` draws this table.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from messaging.outbox import OutboxAudit, OutboxMessage, Status
from workflow import batch
from workflow.bus import publish
from workflow.errors import Conflict, Invalid

SYSTEM = "caseloop"  # the actor recorded for what caseloop does by itself

FINAL = frozenset({Status.FAILED, Status.REJECTED, Status.CANCELLED})


@dataclass(frozen=True)
class Move:
    source: Status | None  # None: the message is being created
    target: Status
    why: str  # what the move means, for the diagram and for errors
    audit: str | None = None  # the audit action written, or None for the mechanics of an attempt
    needs_note: bool = False  # the move must say why (a correction out of a final status)


MOVES: tuple[Move, ...] = (
    Move(None, Status.QUEUED, "owed, nothing to review"),
    Move(None, Status.HELD, "owed, a person must review it first", audit="held"),
    Move(Status.HELD, Status.QUEUED, "approved by a reviewer", audit="approved"),
    Move(Status.HELD, Status.REJECTED, "rejected by a reviewer", audit="rejected", needs_note=True),
    Move(Status.HELD, Status.CANCELLED, "no longer owed (done by hand, or amended)", audit="cancelled"),
    Move(Status.QUEUED, Status.HELD, "a risk came to light, or it cannot be filled in", audit="held"),
    Move(Status.QUEUED, Status.CANCELLED, "not owed now: done, amended, reader left", audit="cancelled"),
    Move(Status.QUEUED, Status.SENDING, "an attempt begins"),
    Move(
        Status.QUEUED,
        Status.FAILED,
        "it can never be made (a digest whose reader left, a task that dies preparing it)",
        audit="failed",
    ),
    Move(Status.SENDING, Status.SENT, "the provider accepted it", audit="sent"),
    Move(Status.SENDING, Status.QUEUED, "the attempt failed before hand-over: retried later"),
    Move(Status.SENDING, Status.HELD, "found unsafe or incomplete while preparing", audit="held"),
    Move(Status.SENDING, Status.FAILED, "refused for good, or out of attempts", audit="failed"),
    Move(Status.SENDING, Status.UNKNOWN, "the outcome after hand-over was lost", audit="unknown"),
    Move(Status.UNKNOWN, Status.SENT, "the channel confirmed it, or the attempt finished", audit="sent"),
    Move(Status.UNKNOWN, Status.QUEUED, "the channel confirmed it never arrived", audit="requeued"),
    Move(Status.UNKNOWN, Status.FAILED, "a person found it did not arrive", audit="failed"),
    Move(Status.SENT, Status.FAILED, "the provider reported a failure or a return", audit="failed"),
    Move(Status.FAILED, Status.SENT, "a late receipt proves it arrived", audit="corrected", needs_note=True),
)
_BY_EDGE = {(m.source, m.target): m for m in MOVES}


# Set while this module changes a status, so a check (the test suite's) can tell a change made
# through the table from one made behind its back.
_MOVING: ContextVar[bool] = ContextVar("outbox_moving", default=False)


def moving() -> bool:
    """Whether the status being set now is set by :func:`move` or :func:`admit`."""
    return _MOVING.get()


@contextmanager
def _through_the_table() -> Iterator[None]:
    token = _MOVING.set(True)
    try:
        yield
    finally:
        _MOVING.reset(token)


class IllegalMove(Conflict):
    """A status change the lifecycle does not allow; the message names both statuses."""


@dataclass(frozen=True)
class MessageSent:
    message: OutboxMessage
    at: datetime


@dataclass(frozen=True)
class MessageFailed:
    message: OutboxMessage
    at: datetime
    why: str


def allowed(source: Status | None, target: Status) -> Move | None:
    return _BY_EDGE.get((source, target))


def admit(
    session: Session, message: OutboxMessage, status: Status, by: str, at: datetime, note: str | None = None
) -> None:
    """Add a new message in its first status (``queued`` or ``held``), audited as the table says."""
    step = allowed(None, status)
    if step is None:
        raise IllegalMove(f"a new message cannot start {status}")
    with _through_the_table():
        message.status = status.value
    batch.add(session, message)
    if message.id is None:
        session.flush()  # the audit row names it (a batch gives the id beforehand instead)
    _audit(session, message, step, by, at, note)


def move(
    session: Session,
    message: OutboxMessage,
    target: Status,
    *,
    by: str,
    at: datetime,
    note: str | None = None,
) -> Move:
    """Move ``message`` to ``target`` if the lifecycle allows it, auditing it in this transaction."""
    source = Status(message.status)
    step = allowed(source, target)
    if step is None:
        final = " (a final status)" if source in FINAL else ""
        raise IllegalMove(f"outbox {message.id}: cannot move from {source}{final} to {target}")
    if step.needs_note and not (note or "").strip():
        raise Invalid(f"outbox {message.id}: moving from {source} to {target} needs a reason")
    with _through_the_table():
        message.status = target.value
    _audit(session, message, step, by, at, note)
    if target is Status.SENT:
        publish(session, MessageSent(message, at))
    elif target is Status.FAILED:
        publish(session, MessageFailed(message, at, note or message.last_error or "failed"))
    return step


def _audit(
    session: Session, message: OutboxMessage, step: Move, by: str, at: datetime, note: str | None
) -> None:
    if step.audit is None:
        return
    row = {"outbox_id": message.id, "action": step.audit, "by": by, "at": at, "note": note}
    loaded = batch.current(session)
    if loaded is not None:
        loaded.append(OutboxAudit, row)  # append-only: written with the batch, no object to track
    else:
        session.add(OutboxAudit(**row))


def mermaid() -> str:
    """The lifecycle as a Mermaid state diagram, generated from :data:`MOVES`."""
    lines = ["stateDiagram-v2"]
    for m in MOVES:
        source = "[*]" if m.source is None else m.source.value
        lines.append(f"    {source} --> {m.target.value}: {m.why}")
    lines.extend(f"    {s.value} --> [*]" for s in (*sorted(FINAL), Status.SENT))
    return "\n".join(lines) + "\n"
