"""The in-process bus: domain events published inside a transaction, handled inside it.

The domain says what happened (a letter became owed, a risk came to light); it does not know who
acts on it. The composition point installs the handlers on every session the database opens, and
:func:`publish` runs them at once, in the same transaction, so a letter's outbox row exists (and
would roll back) with the event that made it owed. A published event that nobody handles is an
error, never silence: a letter nobody creates is a family nobody tells.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from workflow.errors import CaseloopError

HANDLERS = "caseloop.handlers"  # the key of the handler table in ``Session.info``

Handler = Callable[[Session, Any], None]
HandlerTable = Mapping[type, Sequence[Handler]]


class NoHandler(CaseloopError):
    """An event was published on a session with no handler for it (a wiring mistake)."""


def publish(session: Session, event: object) -> None:
    """Hand ``event`` to each of its handlers, in order, in ``session``'s transaction."""
    table: HandlerTable | None = session.info.get(HANDLERS)
    handlers = table.get(type(event)) if table is not None else None
    if not handlers:
        raise NoHandler(
            f"nothing handles {type(event).__name__}: open sessions through the runtime's database"
        )
    for handler in handlers:
        handler(session, event)
