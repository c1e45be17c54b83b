"""Who is acting: a member of staff, a system holding an API token, or caseloop itself.

Every use case takes an actor and asks :mod:`services.authorisation` whether it may act.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflow.errors import Forbidden
from workflow.staff import Role, Staff


class Kind(StrEnum):
    STAFF = "staff"
    CLIENT = "client"  # a system with an API token
    SYSTEM = "system"  # caseloop itself: the sweeper, the workers, an operator's shell


class Scope(StrEnum):
    EVENTS_WRITE = "events:write"
    CASES_READ = "cases:read"
    OUTBOX_READ = "outbox:read"


@dataclass(frozen=True)
class Actor:
    kind: Kind
    id: str  # the staff id, the token's name, or "caseloop"
    role: Role | None = None
    team: str | None = None
    # The teams this member of staff manages (a service manager) or a token is limited to.
    teams: frozenset[str] = field(default_factory=frozenset)
    scopes: frozenset[Scope] = field(default_factory=frozenset)
    # A login that may manage users and tokens. An admin-only login has no role and no team, so
    # it reads no case (see services.access).
    admin: bool = False

    @property
    def name(self) -> str:
        """What the audit trail records as "by"."""
        return self.id


SYSTEM = Actor(Kind.SYSTEM, "caseloop")


def client(name: str, scopes: set[Scope], teams: set[str] | None = None) -> Actor:
    return Actor(Kind.CLIENT, name, scopes=frozenset(scopes), teams=frozenset(teams or ()))


def staff_member(session: Session, staff_id: str, today: date) -> Actor:
    """The actor for a member of staff still with the council ``today``, or :class:`Forbidden`
    naming the id (a leaver's access ends on their leaving day)."""
    person = session.get(Staff, staff_id)
    if person is None:
        raise Forbidden(f"{staff_id} is not a known member of staff")
    if not person.present_on(today):
        left = f" on {person.left_on.isoformat()}" if person.left_on else ""
        raise Forbidden(f"{staff_id} has left{left}: their access has ended")
    role = Role(person.role)
    teams = managed_teams(session, person) if role is Role.SERVICE_MANAGER else frozenset()
    return Actor(Kind.STAFF, person.id, role=role, team=person.team, teams=teams)


def managed_teams(session: Session, manager: Staff) -> frozenset[str]:
    """A service manager's teams, from the staff directory: their own, and each team whose team
    manager reports to them. A team manager who has left still counts, so their team is not
    left without a service manager who sees it."""
    reports = session.scalars(
        select(Staff.team).where(Staff.manager_id == manager.id, Staff.role == Role.TEAM_MANAGER.value)
    )
    return frozenset({manager.team, *reports})
