"""Open loops: referrers, families and schools a duty owes a letter that has not reached them,
with how long they have waited and why, oldest first (the survey's complaint made visible).

What counts as an open loop is worked out in SQL (:mod:`messaging.open_loops`); this module
limits it to what the person may see, checks the filters, and puts each row of one page into
words: who, what they are owed, since when, for how many working days, and why not yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from messaging import open_loops as loops
from services.actors import Actor, Kind
from services.authorisation import Action, authorise, visible_beyond_whole_teams, whole_teams
from services.runtime import Runtime
from workflow.errors import Invalid
from workflow.model import Case
from workflow.staff import Role

WHY_WORDS = {
    loops.QUEUED: "Queued",
    loops.HELD: "Held for review",
    loops.FAILED: "Failed",
    loops.BY_HAND: "To do by hand",
    loops.NOBODY: "Nobody to tell",
}
AUDIENCE_WORDS = {"referrer": "Referrers", "family": "Families", "school": "Schools"}


@dataclass(frozen=True)
class Loop:
    """One person owed a letter, in the page's words."""

    ref: str
    audience: str  # referrer | family | school
    who: str  # "Referrer (Test Primary)", "Family member (mother)", "School's safeguarding lead"
    owed: str  # the duty's label
    since: date  # the local date the letter became owed
    waited: int  # working days since then, up to today
    due: date
    overdue: bool
    why: str  # one of messaging.open_loops.WHYS
    why_words: str
    detail: str  # more about why: hold reasons, the error, the task, who cannot be told
    outbox_id: int | None  # the letter, for held ones (its review page) and failed ones


@dataclass(frozen=True)
class Summary:
    referrers: int  # referrers waiting (one per case episode)
    families: int  # families waiting (households, one per case episode)
    schools: int
    people: int  # every person waiting (a family may be several)
    nobody: int  # duties nobody can be told of
    longest_since: date | None
    longest_waited: int | None  # working days


@dataclass(frozen=True)
class OpenLoops:
    items: list[Loop]
    total: int
    summary: Summary
    teams: list[str] = field(default_factory=list)  # the teams the person may narrow to


def teams_to_choose(actor: Actor) -> list[str]:
    """A service manager narrows the list to one of their teams; nobody else has a choice."""
    if actor.kind is Kind.STAFF and actor.role is Role.SERVICE_MANAGER:
        return sorted(actor.teams)
    return []


def open_loops(
    rt: Runtime,
    actor: Actor,
    *,
    why: str | None = None,
    audience: str | None = None,
    team: str | None = None,
    limit: int = 50,
    offset: int = 0,
    now: datetime | None = None,
) -> OpenLoops:
    """One page of the open loops the actor may see, oldest first, and a summary of them all."""
    authorise(actor, Action.READ_CASE)
    if why is not None and why not in loops.WHYS:
        raise Invalid(f"why: {why!r} is not one of {', '.join(loops.WHYS)}")
    if audience is not None and audience not in loops.AUDIENCES:
        raise Invalid(f"audience: {audience!r} is not one of {', '.join(loops.AUDIENCES)}")
    teams = teams_to_choose(actor)
    if team is not None and team not in teams:
        raise Invalid(
            f"team: {team!r} is not one of your teams ({', '.join(teams)})"
            if teams
            else "team: only a service manager chooses a team here"
        )
    book = rt.book
    today = book.local_date(now or rt.clock())
    with rt.reading() as uow:
        session = uow.session
        filters = _visible(session, actor, team, why, audience)
        found = loops.loops_of(book, filters)
        counted = loops.tally(session, found)
        rows = loops.page(session, found, limit, offset) if counted.total > offset else []
        letters = loops.letter_details(session, (r.outbox_id for r in rows if r.outbox_id is not None))
        nobody = loops.nobody_reasons(session, rows)
        recipients = loops.recipients_of(session, rows)
    waiting, nobody_total, total = counted.waiting, counted.nobody, counted.total
    items = [_loop(rt, row, today, letters, nobody, recipients) for row in rows]
    oldest = min((w.oldest for w in waiting.values() if w.oldest is not None), default=None)
    since = book.local_date(oldest) if oldest is not None else None
    summary = Summary(
        referrers=waiting["referrer"].cases if "referrer" in waiting else 0,
        families=waiting["family"].cases if "family" in waiting else 0,
        schools=waiting["school"].cases if "school" in waiting else 0,
        people=sum(w.people for w in waiting.values()),
        nobody=nobody_total,
        longest_since=since,
        longest_waited=book.calendar.working_days_between(since, today) if since else None,
    )
    return OpenLoops(items, total, summary, teams)


def _visible(
    session: Session, actor: Actor, team: str | None, why: str | None, audience: str | None
) -> loops.Filters:
    if team is not None:  # one of the service manager's teams, every case of which they see
        return loops.Filters(frozenset({team}), None, why, audience)
    teams, beyond = whole_teams(actor), visible_beyond_whole_teams(actor)
    if not teams:
        return loops.Filters(teams, beyond, why, audience)
    # A manager's own allocations outside their teams are few (most often none): found first, by
    # the cases' worker index, so that the loops' query names them, or leaves that part out.
    others = sorted(session.scalars(select(Case.id).where(beyond)))
    return loops.Filters(teams, Case.id.in_(others) if others else None, why, audience)


def _loop(
    rt: Runtime,
    row: loops.LoopRow,
    today: date,
    letters: dict[int, loops.LetterDetail],
    nobody: dict[tuple[int, int, str], str],
    recipients: dict[tuple[int, int, str], loops.Recipient],
) -> Loop:
    book = rt.book
    duty = book.policy.duty(row.duty)
    since = book.local_date(row.since)
    letter = letters.get(row.outbox_id) if row.outbox_id is not None else None
    who = _who(row, recipients.get((row.case_id, row.episode, row.recipient)))
    return Loop(
        ref=row.ref,
        audience=row.audience,
        who=who,
        owed=duty.label if duty else row.duty.replace("_", " "),
        since=since,
        waited=book.calendar.working_days_between(since, today),
        due=row.due,
        overdue=row.why != loops.NOBODY and row.due < today,
        why=row.why,
        why_words=WHY_WORDS[row.why],
        detail=_detail(row, letter, nobody.get((row.case_id, row.episode, row.duty))),
        outbox_id=row.outbox_id,
    )


def _who(row: loops.LoopRow, recipient: loops.Recipient | None) -> str:
    if row.audience == "referrer":
        organisation = recipient.organisation if recipient else None
        return f"Referrer ({organisation})" if organisation else "Referrer"
    if row.audience == "school":
        return "School's safeguarding lead"
    if row.recipient == "family":  # a duty to the household as a whole (nobody to tell)
        return "Family"
    relationship = recipient.relationship if recipient else None
    return f"Family member ({relationship})" if relationship else "Family member"


def _detail(row: loops.LoopRow, letter: loops.LetterDetail | None, nobody: str | None) -> str:
    if row.why == loops.NOBODY:
        return nobody or "no one could be written to"
    if letter is None:
        return "no email or address: tell them by phone, then record it done"
    if row.why == loops.HELD:
        return "; ".join(letter.hold_reasons) or "waiting for a person to review it"
    if row.why == loops.FAILED:
        if letter.status == "unknown":
            return "its sending was interrupted: it may not have arrived"
        return letter.last_error or "the letter failed"
    if row.why == loops.BY_HAND:
        return "a reviewer rejected the letter: tell them another way, then record it done"
    if letter.status == "sending":
        return "being sent now"
    return "waiting to be sent (retrying, or outside office hours)"
