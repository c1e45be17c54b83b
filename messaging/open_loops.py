"""Open loops in SQL: every person a duty still owes a letter, and why it has not reached them.

A duty is owed while its clock (a clock of the duty's own name, :mod:`workflow.duties`) is
active: running, breached or paused. It stops when its letters have gone or the council records
it done by hand, and is cancelled when it is not owed after all. So an open loop is one of:

- a **letter** of an owed duty that has not gone: queued (or being sent), held for review,
  failed (or its delivery is in doubt), or rejected by a reviewer (someone must then tell them
  another way, by hand);
- an owed duty with **no letter** at all: no letter could go to a professional with no email or
  address, so the worker tells them by phone (``duty.by_hand`` in the history);
- a letter that went but then **failed** or came back (its duty's clock stopped when it went),
  while the worker's task to reach that person another way (``failed_letter``) is open;
- a duty **nobody can be told** of: its clock was cancelled because no one could be written to
  (an anonymous referrer, nobody in the household safe to contact or with an address). Nothing
  will close these; they are listed so that the gap is seen, with the reasons the history gives.

The three are one ``UNION ALL`` with the same columns, so that a page is counted, ordered and
cut in the database whatever the size of the queue (a service manager's may hold thousands).
Only the page's rows are then filled in (:func:`letter_details`, :func:`nobody_reasons`,
:func:`recipients_of`), each in one query.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.selectable import Subquery

from messaging.lateness import FAILED_LETTER_CLOCK
from messaging.outbox import OutboxMessage, Status
from workflow.clocks import ACTIVE, ClockStatus, Rulebook
from workflow.model import Case, ClockRow, Episode, HistoryEntry

Rows = Select[*tuple[Any, ...]]  # a query of any columns

QUEUED, HELD, FAILED, BY_HAND, NOBODY = "queued", "held", "failed", "by_hand", "nobody"
WHYS = (QUEUED, HELD, FAILED, BY_HAND, NOBODY)
AUDIENCES = ("referrer", "family", "school")

# Letters that have not reached their reader. ``sent`` and ``cancelled`` have (or are not owed).
_NOT_GONE = (
    Status.QUEUED.value,
    Status.SENDING.value,
    Status.HELD.value,
    Status.FAILED.value,
    Status.UNKNOWN.value,
    Status.REJECTED.value,
)
_ACTIVE = [s.value for s in ACTIVE]
# How duties.on_event words the cancellation of a duty that nobody can be told of.
NOBODY_PREFIX = "no one can be told"


@dataclass(frozen=True)
class Filters:
    """What the list is narrowed to: ``visible`` (who may see which cases) always."""

    visible: ColumnElement[bool]
    why: str | None = None
    audience: str | None = None
    team: str | None = None


@dataclass(frozen=True)
class LoopRow:
    """One open loop as the database cut it; the page fills in the rest for its own rows."""

    why: str
    case_id: int
    ref: str
    team: str
    duty: str
    episode: int
    seq: int
    since: datetime
    due: Any  # a date
    outbox_id: int | None
    audience: str
    recipient: str  # a household member's id, "referrer", "school", or the audience for a duty


def _audience(book: Rulebook) -> ColumnElement[str]:
    """The duty's audience (referrer, family, school) from the policy, as SQL on the clock's name."""
    whens = [(ClockRow.name == d.name, d.audience) for d in book.policy.duties]
    return case(*whens, else_="family") if whens else cast(literal("family"), String)


def _duty_names(book: Rulebook) -> list[str]:
    return [d.name for d in book.policy.duties]


def _episode_of_letter() -> ColumnElement[int]:
    # The episode a letter belongs to (rows from before episodes were kept count as the clock's).
    return func.coalesce(OutboxMessage.payload["episode"].as_integer(), ClockRow.episode)


def _letters(book: Rulebook, visible: ColumnElement[bool]) -> Rows:
    why = case(
        (OutboxMessage.status == Status.HELD.value, HELD),
        (OutboxMessage.status.in_([Status.FAILED.value, Status.UNKNOWN.value]), FAILED),
        (OutboxMessage.status == Status.REJECTED.value, BY_HAND),
        else_=QUEUED,
    )
    return (
        select(
            why.label("why"),
            Case.id.label("case_id"),
            Case.ref.label("ref"),
            Case.team.label("team"),
            ClockRow.name.label("duty"),
            ClockRow.episode.label("episode"),
            ClockRow.seq.label("seq"),
            ClockRow.started_at.label("since"),
            ClockRow.due_on.label("due"),
            OutboxMessage.id.label("outbox_id"),
            cast(OutboxMessage.recipient_role, String).label("audience"),
            cast(OutboxMessage.recipient, String).label("recipient"),
        )
        .select_from(ClockRow)
        .join(Case, Case.id == ClockRow.case_id)
        .join(
            OutboxMessage,
            and_(
                OutboxMessage.case_id == ClockRow.case_id,
                OutboxMessage.duty == ClockRow.name,
                _episode_of_letter() == ClockRow.episode,
            ),
        )
        .where(
            ClockRow.name.in_(_duty_names(book)),
            ClockRow.status.in_(_ACTIVE),
            OutboxMessage.status.in_(_NOT_GONE),
            visible,
        )
    )


def _unlettered(why: str, book: Rulebook) -> Rows:
    """The union's columns for a duty's clock that has no letter to point at (so no outbox id),
    its recipient's audience in both audience columns."""
    audience = _audience(book)
    return select(
        cast(literal(why), String).label("why"),
        Case.id,
        Case.ref,
        Case.team,
        ClockRow.name,
        ClockRow.episode,
        ClockRow.seq,
        ClockRow.started_at,
        ClockRow.due_on,
        cast(null(), Integer),
        audience,
        audience,
    ).select_from(ClockRow)


def _without_letters(book: Rulebook, visible: ColumnElement[bool]) -> Rows:
    """Owed duties with no letter at all: a professional to be told by phone."""
    any_letter = exists().where(
        OutboxMessage.case_id == ClockRow.case_id,
        OutboxMessage.duty == ClockRow.name,
        _episode_of_letter() == ClockRow.episode,
    )
    return (
        _unlettered(BY_HAND, book)
        .join(Case, Case.id == ClockRow.case_id)
        .where(ClockRow.name.in_(_duty_names(book)), ClockRow.status.in_(_ACTIVE), ~any_letter, visible)
    )


def _failed_after_sending(book: Rulebook, visible: ColumnElement[bool]) -> Rows:
    """Letters that went, met their duty, then failed or came back: the duty's clock has stopped,
    but the person was not told. The worker's task to reach them (the ``failed_letter`` clock)
    is still open; it closes them all when it is recorded done."""
    task = aliased(ClockRow)
    open_task = and_(
        task.case_id == OutboxMessage.case_id,
        task.name == FAILED_LETTER_CLOCK,
        task.status.in_(_ACTIVE),
        task.started_at >= OutboxMessage.created_at,
    )
    episode = func.coalesce(OutboxMessage.payload["episode"].as_integer(), Case.episode)
    duty_still_owed = exists().where(
        ClockRow.case_id == OutboxMessage.case_id,
        ClockRow.name == OutboxMessage.duty,
        ClockRow.episode == episode,
        ClockRow.status.in_(_ACTIVE),
    )
    return (
        select(
            cast(literal(FAILED), String).label("why"),
            Case.id,
            Case.ref,
            Case.team,
            cast(OutboxMessage.duty, String),
            episode,
            cast(literal(0), Integer),
            OutboxMessage.created_at,
            select(func.min(task.due_on)).where(open_task).scalar_subquery(),
            OutboxMessage.id,
            cast(OutboxMessage.recipient_role, String),
            cast(OutboxMessage.recipient, String),
        )
        .select_from(OutboxMessage)
        .join(Case, Case.id == OutboxMessage.case_id)
        .where(
            OutboxMessage.duty.in_(_duty_names(book)),
            OutboxMessage.status == Status.FAILED.value,
            exists().where(open_task),
            ~duty_still_owed,
            visible,
        )
    )


def _cancelled_for_nobody() -> ColumnElement[bool]:
    return exists().where(
        HistoryEntry.case_id == ClockRow.case_id,
        HistoryEntry.episode == ClockRow.episode,
        HistoryEntry.kind == "clock.cancelled",
        HistoryEntry.detail["clock"].as_string() == ClockRow.name,
        HistoryEntry.detail["why"].as_string().like(f"{NOBODY_PREFIX}%"),
    )


def _nobody(book: Rulebook, visible: ColumnElement[bool]) -> Rows:
    return (
        _unlettered(NOBODY, book)
        .join(Case, Case.id == ClockRow.case_id)
        .where(
            ClockRow.name.in_(_duty_names(book)),
            ClockRow.status == ClockStatus.CANCELLED.value,
            _cancelled_for_nobody(),
            visible,
        )
    )


def _loops(book: Rulebook, filters: Filters) -> Subquery:
    """Every open loop within the filters, as one subquery (not yet ordered or cut)."""
    visible = filters.visible
    if filters.team is not None:
        visible = and_(visible, Case.team == filters.team)
    parts: list[Rows] = []
    if filters.why in (None, QUEUED, HELD, FAILED, BY_HAND):
        parts.append(_letters(book, visible))
    if filters.why in (None, FAILED):
        parts.append(_failed_after_sending(book, visible))
    if filters.why in (None, BY_HAND):
        parts.append(_without_letters(book, visible))
    if filters.why in (None, NOBODY):
        parts.append(_nobody(book, visible))
    everything = union_all(*parts).subquery("loops")
    conditions: list[ColumnElement[bool]] = []
    if filters.why is not None:
        conditions.append(everything.c.why == filters.why)
    if filters.audience is not None:
        conditions.append(everything.c.audience == filters.audience)
    return select(everything).where(*conditions).subquery("open_loops")


def page(
    session: Session, book: Rulebook, filters: Filters, limit: int, offset: int
) -> tuple[list[LoopRow], int]:
    """The loops from ``offset`` (at most ``limit``), oldest first, and how many there are."""
    loops = _loops(book, filters)
    total = session.scalar(select(func.count()).select_from(loops)) or 0
    query = (
        select(loops)
        .order_by(loops.c.since, loops.c.ref, loops.c.duty, loops.c.recipient, loops.c.outbox_id)
        .limit(limit)
        .offset(offset)
    )
    rows = [LoopRow(**row._asdict()) for row in session.execute(query)]
    return rows, total


@dataclass(frozen=True)
class Waiting:
    """How many of one audience are waiting: people (rows), cases, and the oldest wait."""

    audience: str
    people: int
    cases: int
    oldest: datetime | None


def waiting(session: Session, book: Rulebook, filters: Filters) -> dict[str, Waiting]:
    """By audience, the loops still waiting to be closed (those nobody can close left out)."""
    loops = _loops(book, filters)
    still = loops.c.why != NOBODY
    per_case = (
        select(loops.c.audience, loops.c.case_id, loops.c.episode)
        .where(still)
        .distinct()
        .subquery("per_case")
    )
    by_audience = select(per_case.c.audience, func.count()).group_by(per_case.c.audience)
    cases: dict[str, int] = {audience: n for audience, n in session.execute(by_audience)}
    found: dict[str, Waiting] = {}
    query = (
        select(loops.c.audience, func.count(), func.min(loops.c.since))
        .where(still)
        .group_by(loops.c.audience)
    )
    for audience, people, oldest in session.execute(query):
        found[audience] = Waiting(audience, people, cases.get(audience, 0), _aware(oldest))
    return found


def nobody_count(session: Session, book: Rulebook, filters: Filters) -> int:
    loops = _loops(book, filters)
    return session.scalar(select(func.count()).select_from(loops).where(loops.c.why == NOBODY)) or 0


def _aware(value: datetime | str | None) -> datetime | None:
    # Should an aggregate lose the column's type (SQLite keeps instants as naive text), the
    # instant is still read as UTC, as UTCDateTime reads it.
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class LetterDetail:
    status: str
    hold_reasons: tuple[str, ...]
    last_error: str | None


def letter_details(session: Session, outbox_ids: Iterable[int]) -> dict[int, LetterDetail]:
    """For the page's letters: their status, why they are held, what went wrong."""
    ids = sorted(set(outbox_ids))
    if not ids:
        return {}
    query = select(
        OutboxMessage.id,
        OutboxMessage.status,
        OutboxMessage.payload["hold_reasons"],
        OutboxMessage.last_error,
    ).where(OutboxMessage.id.in_(ids))
    found: dict[int, LetterDetail] = {}
    for outbox_id, status, reasons, error in session.execute(query):
        held = tuple(str(r) for r in reasons) if isinstance(reasons, list) else ()
        found[outbox_id] = LetterDetail(status, held, error)
    return found


def nobody_reasons(session: Session, rows: Sequence[LoopRow]) -> dict[tuple[int, int, str], str]:
    """For the page's duties nobody can be told of: why not, by (case id, episode, duty)."""
    wanted = {(r.case_id, r.episode, r.duty) for r in rows if r.why == NOBODY}
    if not wanted:
        return {}
    query = (
        select(
            HistoryEntry.case_id,
            HistoryEntry.episode,
            HistoryEntry.detail["clock"].as_string(),
            HistoryEntry.detail["why"].as_string(),
        )
        .where(
            HistoryEntry.case_id.in_(sorted({c for c, _, _ in wanted})),
            HistoryEntry.kind == "clock.cancelled",
            HistoryEntry.detail["why"].as_string().like(f"{NOBODY_PREFIX}%"),
        )
        .order_by(HistoryEntry.id)
    )
    found: dict[tuple[int, int, str], str] = {}
    for case_id, episode, clock, why in session.execute(query):
        key = (case_id, episode, str(clock))
        if key in wanted:
            found[key] = str(why).removeprefix(f"{NOBODY_PREFIX}:").strip()
    return found


@dataclass(frozen=True)
class Recipient:
    """Who a loop is owed to, in a page's words: no names of the public, no addresses."""

    organisation: str | None  # the referrer's organisation, if any
    relationship: str | None  # the household member's relationship to the child, if known


def recipients_of(session: Session, rows: Sequence[LoopRow]) -> dict[tuple[int, int, str], Recipient]:
    """For the page's rows, by (case id, episode, recipient): the referrer's organisation or the
    household member's relationship, from the episode that owed the letter."""
    case_ids = sorted({r.case_id for r in rows})
    if not case_ids:
        return {}
    current = {
        case_id: (episode, referrer, household)
        for case_id, episode, referrer, household in session.execute(
            select(Case.id, Case.episode, Case.referrer["organisation"].as_string(), Case.household).where(
                Case.id.in_(case_ids)
            )
        )
    }
    earlier_keys = {(r.case_id, r.episode) for r in rows if current[r.case_id][0] != r.episode}
    earlier: dict[tuple[int, int], tuple[str | None, Any]] = {}
    if earlier_keys:
        query = select(
            Episode.case_id,
            Episode.episode,
            Episode.facts[("referrer", "organisation")].as_string(),
            Episode.facts["household"],
        ).where(or_(*(and_(Episode.case_id == c, Episode.episode == e) for c, e in sorted(earlier_keys))))
        for case_id, episode, organisation, household in session.execute(query):
            earlier[(case_id, episode)] = (organisation, household)
    found: dict[tuple[int, int, str], Recipient] = {}
    for row in rows:
        now_episode, organisation, household = current[row.case_id]
        if row.episode != now_episode and (row.case_id, row.episode) in earlier:
            organisation, household = earlier[(row.case_id, row.episode)]
        relationship = None
        if row.audience == "family":
            member = next((p for p in household or [] if str(p.get("id")) == row.recipient), None)
            relationship = member.get("relationship") if member else None
        found[(row.case_id, row.episode, row.recipient)] = Recipient(organisation or None, relationship)
    return found
