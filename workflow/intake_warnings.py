"""What an accepted event may get wrong without being refused: it is taken, and someone is told.

A child aged 18 or over at the referral is no longer a child in law, but the case system may hold
a wrong date of birth, so the referral is taken and the import says so. A team or worker missing
from the staff directory is most often a directory not yet updated; its case is taken so no clock
is lost, and the import says so. Before any staff directory is imported nothing can be known, and
nothing is said. Each warning is also written to the case history (codes and ids, no personal data).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflow import batch
from workflow.events import Event, ReferralReceived
from workflow.history import record
from workflow.model import Case
from workflow.staff import Staff

ADULT_AGE = 18
HISTORY_KIND = "intake.warning"


def age_on(born: date, day: date) -> int:
    before_birthday = (day.month, day.day) < (born.month, born.day)
    return day.year - born.year - before_birthday


def check(session: Session, case: Case, event: Event, received_id: int | None) -> list[str]:
    """The warnings about ``event`` just applied to ``case``, each also recorded in its history."""
    found: list[tuple[str, dict[str, str], str]] = []
    if isinstance(event, ReferralReceived) and age_on(event.child.dob, event.at.date()) >= ADULT_AGE:
        found.append(
            (
                "adult_at_referral",
                {},
                f"the child is {ADULT_AGE} or over on the referral date; accepted: check the date of birth",
            )
        )
    loaded = batch.current(session)
    if loaded.directory_imported if loaded is not None else _directory_imported(session):
        team = getattr(event, "team", None)
        if isinstance(team, str) and not (
            team in loaded.teams if loaded is not None else _team_known(session, team)
        ):
            found.append(
                ("unknown_team", {"team": team}, f"team {team!r} is not in the staff directory; accepted")
            )
        worker = getattr(event, "worker", None)
        if isinstance(worker, str) and not (
            worker in loaded.workers if loaded is not None else session.get(Staff, worker) is not None
        ):
            found.append(
                (
                    "unknown_worker",
                    {"worker": worker},
                    f"worker {worker!r} is not in the staff directory; accepted",
                )
            )
    for code, detail, _ in found:
        record(session, case, HISTORY_KIND, event.at, received_id, code=code, **detail)
    return [f"case {case.ref}: {words}" for _, _, words in found]


def _directory_imported(session: Session) -> bool:
    return session.scalar(select(Staff.id).limit(1)) is not None


def _team_known(session: Session, team: str) -> bool:
    return session.scalar(select(Staff.id).where(Staff.team == team).limit(1)) is not None
