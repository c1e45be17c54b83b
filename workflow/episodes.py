"""Earlier episodes of a case, kept as they stood when the case was referred again.

A letter still waiting when a case is referred again belongs to the episode that made it owed:
its referrer, decision and household are that episode's, never the new referral's (a neighbour
who referred a child must not receive the school's acknowledgement of the next referral).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflow.calendar import add_calendar_months
from workflow.model import Case, Episode

# The census's measure: a referral within 12 months of the child's previous referral. The one
# rule for the history's flag, the timeline's tag and the performance page's figure.
RE_REFERRAL_MONTHS = 12


def is_re_referral(previous_referral: date, referred: date) -> bool:
    """Whether a referral on ``referred`` came within 12 calendar months of the previous one
    (both local dates; a previous referral on 29 February counts to 28 February)."""
    return referred <= add_calendar_months(previous_referral, RE_REFERRAL_MONTHS)


# The columns of a case that describe its current episode (the case's identity does not change).
EPISODE_FIELDS = (
    "state",
    "team",
    "worker",
    "referral_source",
    "decision",
    "assessment_started",
    "assessment_completed",
    "factors",
    "flags",
    "child",
    "referrer",
    "household",
    "closure_reason",
)
EPISODE_TIMES = ("referral_at", "closed_at")


def keep(session: Session, case: Case, ended_at: datetime) -> None:
    """Record the case's current episode before a new referral replaces its facts."""
    facts: dict[str, Any] = {name: getattr(case, name) for name in EPISODE_FIELDS}
    for name in EPISODE_TIMES:
        value = getattr(case, name)
        facts[name] = value.isoformat() if value is not None else None
    session.add(Episode(case_id=case.id, episode=case.episode, facts=facts, ended_at=ended_at))


def as_of(session: Session, case: Case, episode: int | None) -> Case:
    """The case as it stood in ``episode``: the case itself for its current episode, else a
    detached copy filled from the kept episode (never added to the session, never written)."""
    if episode is None or episode == case.episode:
        return case
    kept = session.scalar(select(Episode).where(Episode.case_id == case.id, Episode.episode == episode))
    if kept is None:
        return case  # an episode from before episodes were kept: the best we have is the case
    earlier = Case(id=case.id, ref=case.ref, episode=episode, updated_at=case.updated_at)
    for name in EPISODE_FIELDS:
        setattr(earlier, name, kept.facts.get(name))
    for name in EPISODE_TIMES:
        value = kept.facts.get(name)
        setattr(earlier, name, datetime.fromisoformat(value) if value else None)
    return earlier
