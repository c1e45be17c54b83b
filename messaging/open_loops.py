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

Who may see a loop is split in two, each part read through its own index: the cases of the teams
the person sees whole, found by the clock's own team (``ix_clocks_live_duty``, which carries the
case's reference too, so no case is read), and the few others they may see (their own
allocations elsewhere), found from the cases. A duty's letters are matched to its clock by the
letter's episode column (``ix_outbox_letters``), so that neither table's rows are read either.
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
    false,
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
NOT_GONE = (
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
    """What the list is narrowed to. Who may see which cases always: every case of ``teams``
    (read by the clocks' own team) and, of the cases of other teams, those ``beyond`` allows (a
    condition on ``cases``; None: none of them)."""

    teams: frozenset[str]
    beyond: ColumnElement[bool] | None
    why: str | None = None
    audience: str | None = None


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
    return func.coalesce(OutboxMessage.episode, ClockRow.episode)


def _letter_of(clock_letter: ColumnElement[bool]) -> ColumnElement[bool]:
    """A duty's letter of the clock's case, duty and episode (``duty`` not null, as the index
    of duties' letters says, so that the planner reads that index)."""
    return and_(
        OutboxMessage.case_id == ClockRow.case_id,
        OutboxMessage.duty.is_not(None),
        OutboxMessage.duty == ClockRow.name,
        clock_letter,
    )


def _scoped(query: Rows, filters: Filters) -> list[Rows]:
    """A part that starts from the clocks, once per way a case may be visible: by the clock's
    own team for the teams seen whole, and through the case for the others."""
    found: list[Rows] = []
    if filters.teams:
        found.append(query.where(ClockRow.team.in_(sorted(filters.teams))))
    if filters.beyond is not None:
        # The cases first (a manager's own allocations elsewhere are few), then their clocks.
        found.append(query.where(ClockRow.case_id.in_(select(Case.id).where(filters.beyond))))
    return found


def _clock_columns() -> tuple[ColumnElement[Any], ...]:
    """The union's columns a duty's clock gives: its case, duty, episode and dates (read from the
    clock's own copies of the case's reference and team, which its indexes carry)."""
    return (
        ClockRow.case_id.label("case_id"),
        ClockRow.case_ref.label("ref"),
        ClockRow.team.label("team"),
        ClockRow.name.label("duty"),
        ClockRow.episode.label("episode"),
        ClockRow.seq.label("seq"),
        ClockRow.started_at.label("since"),
        ClockRow.due_on.label("due"),
    )


def _letters(book: Rulebook, filters: Filters) -> list[Rows]:
    why = case(
        (OutboxMessage.status == Status.HELD.value, HELD),
        (OutboxMessage.status.in_([Status.FAILED.value, Status.UNKNOWN.value]), FAILED),
        (OutboxMessage.status == Status.REJECTED.value, BY_HAND),
        else_=QUEUED,
    )
    query = (
        select(
            why.label("why"),
            *_clock_columns(),
            OutboxMessage.id.label("outbox_id"),
            cast(OutboxMessage.recipient_role, String).label("audience"),
            cast(OutboxMessage.recipient, String).label("recipient"),
        )
        .select_from(ClockRow)
        .join(OutboxMessage, _letter_of(_episode_of_letter() == ClockRow.episode))
        .where(
            ClockRow.name.in_(_duty_names(book)),
            ClockRow.status.in_(_ACTIVE),
            OutboxMessage.status.in_(NOT_GONE),
        )
    )
    return _scoped(query, filters)


def _unlettered(why: str, book: Rulebook) -> Rows:
    """The union's columns for a duty's clock that has no letter to point at (so no outbox id),
    its recipient's audience in both audience columns."""
    audience = _audience(book)
    return select(
        cast(literal(why), String).label("why"),
        *_clock_columns(),
        cast(null(), Integer).label("outbox_id"),
        audience.label("audience"),
        audience.label("recipient"),
    ).select_from(ClockRow)


def _without_letters(book: Rulebook, filters: Filters) -> list[Rows]:
    """Owed duties with no letter at all: a professional to be told by phone."""
    any_letter = exists().where(_letter_of(_episode_of_letter() == ClockRow.episode))
    query = _unlettered(BY_HAND, book).where(
        ClockRow.name.in_(_duty_names(book)), ClockRow.status.in_(_ACTIVE), ~any_letter
    )
    return _scoped(query, filters)


def _failed_after_sending(book: Rulebook, filters: Filters) -> Rows:
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
    episode = func.coalesce(OutboxMessage.episode, Case.episode)
    # Few letters fail after they went: their cases are read, and who may see them asked there.
    seen: list[ColumnElement[bool]] = [Case.team.in_(sorted(filters.teams))] if filters.teams else []
    if filters.beyond is not None:
        seen.append(filters.beyond)
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
            or_(*seen) if seen else false(),
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


def _nobody(book: Rulebook, filters: Filters) -> list[Rows]:
    query = _unlettered(NOBODY, book).where(
        ClockRow.name.in_(_duty_names(book)),
        ClockRow.status == ClockStatus.CANCELLED.value,
        _cancelled_for_nobody(),
    )
    return _scoped(query, filters)


def loops_of(book: Rulebook, filters: Filters) -> Subquery:
    """Every open loop within the filters, as one subquery (not yet ordered or cut): built once
    for a page, which both counts it (:func:`tally`) and cuts it (:func:`page`)."""
    parts: list[Rows] = []
    if filters.why in (None, QUEUED, HELD, FAILED, BY_HAND):
        parts.extend(_letters(book, filters))
    if filters.why in (None, FAILED):
        parts.append(_failed_after_sending(book, filters))
    if filters.why in (None, BY_HAND):
        parts.extend(_without_letters(book, filters))
    if filters.why in (None, NOBODY):
        parts.extend(_nobody(book, filters))
    everything = union_all(*parts).subquery("loops")
    conditions: list[ColumnElement[bool]] = []
    if filters.why is not None:
        conditions.append(everything.c.why == filters.why)
    if filters.audience is not None:
        conditions.append(everything.c.audience == filters.audience)
    return select(everything).where(*conditions).subquery("open_loops")


def page(session: Session, loops: Subquery, limit: int, offset: int) -> list[LoopRow]:
    """The loops from ``offset`` (at most ``limit``), oldest first (:func:`tally` counts them)."""
    query = (
        select(loops)
        .order_by(loops.c.since, loops.c.ref, loops.c.duty, loops.c.recipient, loops.c.outbox_id)
        .limit(limit)
        .offset(offset)
    )
    return [LoopRow(**row._asdict()) for row in session.execute(query)]


@dataclass(frozen=True)
class Waiting:
    """How many of one audience are waiting: people (rows), cases, and the oldest wait."""

    audience: str
    people: int
    cases: int
    oldest: datetime | None


@dataclass(frozen=True)
class Tally:
    """Every loop within the filters, counted: how many in all (the pages' total), by audience
    those still waiting to be closed, and those nobody can close."""

    total: int
    waiting: dict[str, Waiting]
    nobody: int


def tally(session: Session, loops: Subquery) -> Tally:
    """The loops counted in one pass of the union (not one pass per figure): grouped by audience
    and by whether anyone can be told, each group with its rows, its case episodes and its
    oldest wait."""
    nobody = (loops.c.why == NOBODY).label("nobody")
    # A case episode as one value, so that DISTINCT counts it on SQLite too (one column only).
    episode = cast(loops.c.case_id, String) + ":" + cast(loops.c.episode, String)
    query = select(
        loops.c.audience, nobody, func.count(), func.count(episode.distinct()), func.min(loops.c.since)
    ).group_by(loops.c.audience, nobody)
    total = nobody_total = 0
    waiting: dict[str, Waiting] = {}
    for audience, is_nobody, people, cases, oldest in session.execute(query):
        total += people
        if is_nobody:
            nobody_total += people
        else:
            waiting[audience] = Waiting(audience, people, cases, _aware(oldest))
    return Tally(total, waiting, nobody_total)


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
