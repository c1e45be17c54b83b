"""The one place that answers "may this actor do this to this case?". Every use case asks it.

- caseloop itself may do anything;
- a social worker sees the cases allocated to them, and no other (a case waiting for allocation
  is its team manager's to see and to allocate);
- a team manager sees those allocated to them and their team's; a service manager those
  allocated to them and those of the teams they manage (their own team and each team whose team
  manager reports to them: ``Actor.teams``, from the staff directory);
- an admin-only login (no role) manages users, tokens and leavers and reads no case at all (any
  admin login may manage them);
- a system with an API token may do what its scopes allow, on the teams it is limited to (all,
  when it names none);
- a case flagged ``restricted`` is seen only by its allocated worker and its team and service
  managers, and never by a token.

A case the actor may not see gets :class:`NotFound`, word for word as for a case that does not
exist: no answer tells an actor that a case it may not see is there. ``may_see`` (one case in
hand) and ``visible_cases`` (the same rule in SQL, for lists and counts) must always agree; the
integration tests check them against each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from sqlalchemy import ColumnElement, String, and_, cast, false, not_, or_, true

from services.actors import Actor, Kind, Scope
from workflow.census import Flag
from workflow.errors import Forbidden
from workflow.model import Case
from workflow.staff import Role


class Action(StrEnum):
    IMPORT_EVENTS = "import events"
    MANAGE_EVENTS = "retry or dismiss rejected events"
    IMPORT_STAFF = "import staff"
    MANAGE_STAFF = "record a leaver or bring one back"
    RUN_SWEEP = "run the sweep and deliver messages"
    READ_CASE = "read a case"
    READ_OUTBOX = "read the outbox"
    REVIEW_LETTER = "approve or reject a letter"
    ACKNOWLEDGE_REMINDER = "acknowledge a reminder"
    RECORD_DUTY = "record a duty done by hand"
    ALLOCATE_CASE = "allocate a case to a worker"
    MANAGE_USERS = "manage logins"
    MANAGE_TOKENS = "make, list or revoke API tokens"
    READ_PERFORMANCE = "read the performance figures"
    AUDIT_CASES = "draw the audit sample or record its findings"


# What a token's scope allows; staff actions are allowed per case (see may_see).
_SCOPES = {
    Action.IMPORT_EVENTS: Scope.EVENTS_WRITE,
    Action.READ_CASE: Scope.CASES_READ,
    Action.READ_OUTBOX: Scope.OUTBOX_READ,
}
_STAFF_ACTIONS = frozenset(
    {
        Action.READ_CASE,
        Action.READ_OUTBOX,
        Action.REVIEW_LETTER,
        Action.ACKNOWLEDGE_REMINDER,
        Action.RECORD_DUTY,
        Action.ALLOCATE_CASE,  # a manager, on the cases of their teams (services.allocation)
    }
)
# An admin login also records leavers and brings them back: a leaver's login and sessions end
# with them, so the people who manage logins are the ones to say who has left.
_ADMIN_ACTIONS = frozenset({Action.MANAGE_USERS, Action.MANAGE_TOKENS, Action.MANAGE_STAFF})
# A manager's work across a team's cases (figures, the audit sample): never a social worker's.
_MANAGER_ACTIONS = frozenset({Action.READ_PERFORMANCE, Action.AUDIT_CASES})
MANAGERS = frozenset({Role.TEAM_MANAGER, Role.SERVICE_MANAGER})


def authorise(actor: Actor, action: Action) -> None:
    """Refuse with :class:`Forbidden` an action this actor may never take, on any case."""
    if actor.kind is Kind.SYSTEM:
        return
    if actor.kind is Kind.CLIENT:
        scope = _SCOPES.get(action)
        if scope is None or scope not in actor.scopes:
            raise Forbidden(f"{actor.id} may not {action}" + (f" (needs scope {scope})" if scope else ""))
        return
    if action in _ADMIN_ACTIONS and actor.admin:
        return
    if action in _MANAGER_ACTIONS:
        if actor.role not in MANAGERS:
            raise Forbidden(f"only team managers and service managers may {action}")
        return
    if action not in _STAFF_ACTIONS:
        raise Forbidden(f"{actor.id} may not {action}")
    if actor.role is None:
        # Refused outright (not an empty list): the login can never read a case, so saying so
        # tells nothing about any one case.
        raise Forbidden(f"{actor.id} is an admin-only login: it may not {action}")


def is_restricted(case: Case) -> bool:
    return Flag.RESTRICTED.value in (case.flags or [])


def may_see(actor: Actor, case: Case) -> bool:
    """Whether ``actor`` may see ``case`` at all."""
    if actor.kind is Kind.SYSTEM:
        return True
    if actor.kind is Kind.CLIENT:
        return not is_restricted(case) and (not actor.teams or case.team in actor.teams)
    if actor.role is None:
        return False
    if case.worker == actor.id:
        return True
    if actor.role is Role.TEAM_MANAGER:
        return case.team == actor.team
    if actor.role is Role.SERVICE_MANAGER:
        return case.team in actor.teams
    return False  # a social worker: only the cases allocated to them


def _restricted_sql() -> ColumnElement[bool]:
    # Flags are a JSON list of known words; the quoted word cannot match inside another flag.
    # LIKE on the JSON's text works alike on SQLite and PostgreSQL (no JSON operators needed).
    return cast(Case.flags, String).like(f'%"{Flag.RESTRICTED.value}"%')


def visible_cases(actor: Actor) -> ColumnElement[bool]:
    """The same rule as :func:`may_see`, as a SQL condition on ``cases`` for lists and counts."""
    if actor.kind is Kind.SYSTEM:
        return true()
    if actor.kind is Kind.CLIENT:
        unrestricted = not_(_restricted_sql())
        return and_(Case.team.in_(sorted(actor.teams)), unrestricted) if actor.teams else unrestricted
    if actor.role is None or not actor.id:
        return false()
    allocated = Case.worker == actor.id
    if actor.role is Role.TEAM_MANAGER and actor.team is not None:
        return or_(allocated, Case.team == actor.team)
    if actor.role is Role.SERVICE_MANAGER:
        return or_(allocated, Case.team.in_(sorted(actor.teams))) if actor.teams else allocated
    return allocated  # a social worker


def visible_in_teams(
    actor: Actor, teams: Iterable[str], team: ColumnElement[str] | None = None
) -> ColumnElement[bool]:
    """The cases of ``teams`` that ``actor`` may see, as a SQL condition on ``cases``.

    When the actor sees every case of each of those teams (a team manager's own team, a
    service manager's teams), the team condition alone is the rule: the planner then reads the
    teams' cases by index instead of also looking for the actor's own allocations (which,
    outside those teams, the team condition excludes anyway). ``team`` is the column the team
    condition is put on: the case's by default, or a copy of it kept on the rows a query starts
    from (a clock's team), so that the planner reads those rows by team."""
    chosen = sorted(set(teams))
    in_teams = (Case.team if team is None else team).in_(chosen)
    if sees_every_case_of(actor, chosen):
        return in_teams
    return and_(in_teams, visible_cases(actor))


def sees_every_case_of(actor: Actor, teams: Iterable[str]) -> bool:
    """Whether ``actor`` may see every case of each of ``teams`` (then :func:`visible_in_teams`
    is the team condition alone, and a query on a copy of the team needs no case to check)."""
    return actor.kind is Kind.STAFF and set(teams) <= _whole_teams(actor)


def whole_teams(actor: Actor) -> frozenset[str]:
    """The teams whose every case ``actor`` may see (none for a social worker, a token or
    caseloop itself, whose rule :func:`visible_cases` alone says)."""
    return _whole_teams(actor) if actor.kind is Kind.STAFF else frozenset()


def visible_beyond_whole_teams(actor: Actor) -> ColumnElement[bool]:
    """The cases outside :func:`whole_teams` that ``actor`` may see, as a SQL condition on
    ``cases``: together with every case of those teams, exactly :func:`visible_cases`. Split so
    that a list reads each part through its own index: the teams' cases by a copy of the team
    (a clock's), and the rest, a manager's own allocations elsewhere, by the case's worker (the
    planner reads an OR of the two as a scan of every case)."""
    teams = whole_teams(actor)
    if not teams:
        return visible_cases(actor)
    # Outside the teams they see whole, a manager sees only the cases allocated to them.
    return and_(Case.worker == actor.id, Case.team.not_in(sorted(teams)))


def _whole_teams(actor: Actor) -> frozenset[str]:
    # The teams whose every case visible_cases lets the actor see (restricted cases apart,
    # which only clients are refused).
    if actor.role is Role.TEAM_MANAGER and actor.team is not None and actor.id:
        return frozenset({actor.team})
    if actor.role is Role.SERVICE_MANAGER and actor.id:
        return frozenset(actor.teams)
    return frozenset()


def require_staff(actor: Actor, action: Action) -> None:
    """Actions that a person must take in their own name (approving a letter, acknowledging)."""
    if actor.kind is not Kind.STAFF:
        raise Forbidden(f"only a member of staff may {action}")
