"""The one place that answers "may this actor do this to this case?". Every use case asks it.

- caseloop itself may do anything;
- a member of staff may see, and review the letters of, a case allocated to them, a case of their
  own team, and (a service manager) any case;
- a system with an API token may do what its scopes allow, on the teams it is limited to (all,
  when it names none).

A case the actor may not see gets :class:`NotFound`, word for word as for a case that does not
exist: no answer tells an actor that a case it may not see is there.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import ColumnElement, false, or_, true

from services.actors import Actor, Kind, Scope
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
    MANAGE_TOKENS = "make, list or revoke API tokens"


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
    }
)


def authorise(actor: Actor, action: Action) -> None:
    """Refuse with :class:`Forbidden` an action this actor may never take, on any case."""
    if actor.kind is Kind.SYSTEM:
        return
    if actor.kind is Kind.CLIENT:
        scope = _SCOPES.get(action)
        if scope is None or scope not in actor.scopes:
            raise Forbidden(f"{actor.id} may not {action}" + (f" (needs scope {scope})" if scope else ""))
        return
    if action not in _STAFF_ACTIONS:
        raise Forbidden(f"{actor.id} may not {action}")


def may_see(actor: Actor, case: Case) -> bool:
    """Whether ``actor`` may see ``case`` at all."""
    if actor.kind is Kind.SYSTEM:
        return True
    if actor.kind is Kind.CLIENT:
        return not actor.teams or case.team in actor.teams
    if actor.role is Role.SERVICE_MANAGER:
        return True
    return case.worker == actor.id or case.team == actor.team


def visible_cases(actor: Actor) -> ColumnElement[bool]:
    """The same rule as :func:`may_see`, as a SQL condition on ``cases`` for lists and counts."""
    if actor.kind is Kind.SYSTEM or actor.role is Role.SERVICE_MANAGER:
        return true()
    if actor.kind is Kind.CLIENT:
        return Case.team.in_(sorted(actor.teams)) if actor.teams else true()
    if actor.team is None:
        return Case.worker == actor.id if actor.id else false()
    return or_(Case.worker == actor.id, Case.team == actor.team)


def require_staff(actor: Actor, action: Action) -> None:
    """Actions that a person must take in their own name (approving a letter, acknowledging)."""
    if actor.kind is not Kind.STAFF:
        raise Forbidden(f"only a member of staff may {action}")
