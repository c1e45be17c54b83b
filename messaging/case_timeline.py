"""A case's timeline in SQL: what was received, what the history records, the letters made and
what happened to each, merged in the order they happened and paged in the database.

Four sources, one ``UNION ALL`` of (source, id, at): received events (by the case's reference),
history entries, letters (outbox rows of the case) and their audit trail. Some history kinds are
left out because another source says the same thing better: ``event.accepted`` is the received
event itself, the ``letter.*`` entries repeat the outbox and its audit, and ``episode.opened`` is
the referral that opened the episode. Only the page's rows are then read in full, one query per
source (:func:`details`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Select, String, cast, func, literal, select, union_all
from sqlalchemy.orm import Session

from messaging.outbox import OutboxAudit, OutboxMessage
from workflow.model import Case, ClockRow, Episode, HistoryEntry, ReceivedEvent

Rows = Select[*tuple[Any, ...]]  # a query of any columns

EVENT, HISTORY, LETTER, AUDIT = "event", "history", "letter", "audit"
# At the same instant: what arrived, then what it did, then the letters it made, then their fate.
_ORDER = {EVENT: 0, HISTORY: 1, LETTER: 2, AUDIT: 3}
LEFT_OUT = (
    "event.accepted",
    "episode.opened",
    "letter.created",
    "letter.held",
    "letter.cancelled",
    "letter.approved",
    "letter.rejected",
)


@dataclass(frozen=True)
class Item:
    source: str
    id: int
    at: datetime


def _source(name: str) -> Any:
    return cast(literal(name), String).label("source")


def _rank(name: str) -> Any:
    return cast(literal(_ORDER[name]), Integer).label("rank")


def _items(case: Case) -> Any:
    events: Rows = select(
        _source(EVENT),
        _rank(EVENT),
        ReceivedEvent.id.label("id"),
        func.coalesce(ReceivedEvent.occurred_at, ReceivedEvent.received_at).label("at"),
    ).where(ReceivedEvent.case_ref == case.ref)
    history: Rows = select(_source(HISTORY), _rank(HISTORY), HistoryEntry.id, HistoryEntry.at).where(
        HistoryEntry.case_id == case.id, HistoryEntry.kind.not_in(LEFT_OUT)
    )
    letters: Rows = select(_source(LETTER), _rank(LETTER), OutboxMessage.id, OutboxMessage.created_at).where(
        OutboxMessage.case_id == case.id
    )
    audits: Rows = (
        select(_source(AUDIT), _rank(AUDIT), OutboxAudit.id, OutboxAudit.at)
        .join(OutboxMessage, OutboxMessage.id == OutboxAudit.outbox_id)
        .where(OutboxMessage.case_id == case.id)
    )
    return union_all(events, history, letters, audits).subquery("timeline")


def page(
    session: Session, case: Case, limit: int, offset: int, newest_first: bool = False
) -> tuple[list[Item], int]:
    """The case's timeline from ``offset`` (at most ``limit`` items), and how many there are."""
    items = _items(case)
    total = session.scalar(select(func.count()).select_from(items)) or 0
    keys = (items.c.at, items.c.rank, items.c.id)
    ordered = [k.desc() for k in keys] if newest_first else list(keys)
    query = select(items.c.source, items.c.id, items.c.at).order_by(*ordered).limit(limit).offset(offset)
    return [Item(source, id_, at) for source, id_, at in session.execute(query)], total


@dataclass(frozen=True)
class Received:
    id: int
    type: str | None
    occurred_at: datetime | None
    received_at: datetime
    status: str
    reason: str | None
    source: str
    raw: str


@dataclass(frozen=True)
class History:
    id: int
    episode: int
    kind: str
    at: datetime
    detail: dict[str, Any]


@dataclass(frozen=True)
class Letter:
    id: int
    kind: str
    duty: str | None
    recipient_role: str
    channel: str
    status: str
    created_at: datetime
    hold_reasons: tuple[str, ...]


@dataclass(frozen=True)
class Audit:
    id: int
    outbox_id: int
    action: str
    by: str
    at: datetime
    note: str | None
    duty: str | None
    recipient_role: str


@dataclass(frozen=True)
class Clock:
    episode: int
    name: str
    seq: int
    counted_from: Any  # a date
    due_on: Any
    status: str
    stopped_on: Any


@dataclass
class Details:
    """The page's items read in full, by id within each source."""

    events: dict[int, Received] = field(default_factory=dict)
    history: dict[int, History] = field(default_factory=dict)
    letters: dict[int, Letter] = field(default_factory=dict)
    audits: dict[int, Audit] = field(default_factory=dict)
    clocks: dict[tuple[int, str, int], Clock] = field(default_factory=dict)


def details(session: Session, case: Case, items: Sequence[Item]) -> Details:
    wanted: dict[str, list[int]] = {EVENT: [], HISTORY: [], LETTER: [], AUDIT: []}
    for item in items:
        wanted[item.source].append(item.id)
    found = Details()
    if wanted[EVENT]:
        query = select(
            ReceivedEvent.id,
            ReceivedEvent.type,
            ReceivedEvent.occurred_at,
            ReceivedEvent.received_at,
            ReceivedEvent.status,
            ReceivedEvent.reason,
            ReceivedEvent.source,
            ReceivedEvent.raw,
        ).where(ReceivedEvent.id.in_(wanted[EVENT]))
        found.events = {row[0]: Received(*row) for row in session.execute(query)}
    if wanted[HISTORY]:
        query2 = select(
            HistoryEntry.id, HistoryEntry.episode, HistoryEntry.kind, HistoryEntry.at, HistoryEntry.detail
        ).where(HistoryEntry.id.in_(wanted[HISTORY]))
        found.history = {row[0]: History(*row) for row in session.execute(query2)}
    if wanted[LETTER]:
        query3 = select(
            OutboxMessage.id,
            OutboxMessage.kind,
            OutboxMessage.duty,
            OutboxMessage.recipient_role,
            OutboxMessage.channel,
            OutboxMessage.status,
            OutboxMessage.created_at,
            OutboxMessage.payload["hold_reasons"],
        ).where(OutboxMessage.id.in_(wanted[LETTER]))
        for id_, kind, duty, role, channel, status, created, reasons in session.execute(query3):
            held = tuple(str(r) for r in reasons) if isinstance(reasons, list) else ()
            found.letters[id_] = Letter(id_, kind, duty, role, channel, status, created, held)
    if wanted[AUDIT]:
        query4 = (
            select(
                OutboxAudit.id,
                OutboxAudit.outbox_id,
                OutboxAudit.action,
                OutboxAudit.by,
                OutboxAudit.at,
                OutboxAudit.note,
                OutboxMessage.duty,
                OutboxMessage.recipient_role,
            )
            .join(OutboxMessage, OutboxMessage.id == OutboxAudit.outbox_id)
            .where(OutboxAudit.id.in_(wanted[AUDIT]))
        )
        found.audits = {row[0]: Audit(*row) for row in session.execute(query4)}
    if any(h.kind.startswith("clock.") for h in found.history.values()):
        query5 = select(
            ClockRow.episode,
            ClockRow.name,
            ClockRow.seq,
            ClockRow.counted_from,
            ClockRow.due_on,
            ClockRow.status,
            ClockRow.stopped_on,
        ).where(ClockRow.case_id == case.id)
        found.clocks = {(r[0], r[1], r[2]): Clock(*r) for r in session.execute(query5)}
    return found


@dataclass(frozen=True)
class EpisodeDates:
    episode: int
    referral_at: datetime | None
    closed_at: datetime | None


def episodes(session: Session, case: Case) -> list[EpisodeDates]:
    """Every episode of the case with its referral and closure: kept ones, then the current."""
    query = (
        select(
            Episode.episode, Episode.facts["referral_at"].as_string(), Episode.facts["closed_at"].as_string()
        )
        .where(Episode.case_id == case.id)
        .order_by(Episode.episode)
    )
    found = [
        EpisodeDates(n, _instant(referred), _instant(closed))
        for n, referred, closed in session.execute(query)
    ]
    found.append(EpisodeDates(case.episode, case.referral_at, case.closed_at))
    return found


def _instant(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
