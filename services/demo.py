"""Logins for the demo borough: one social worker, one team manager and one service manager
(who also manages logins), so that someone trying caseloop can sign in to each kind of page.

Only ``caseloop demo`` calls this, on the database it filled with synthetic people. Each run gives
the three logins a new random password (a login that exists is disabled and enabled again with
it), so no password is written in the code or the documentation.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from services import access
from services.actors import SYSTEM
from services.runtime import Runtime
from workflow.errors import Conflict, NotFound


@dataclass(frozen=True)
class DemoLogin:
    role: str
    staff_id: str
    admin: bool


# The first of each kind in the demo borough's staff list (workflow.demo.staff_csv).
DEMO_LOGINS = (
    DemoLogin("social worker", "SW001", admin=False),
    DemoLogin("team manager", "TM01", admin=False),
    DemoLogin("service manager", "SM01", admin=True),
)


def new_password() -> str:
    return secrets.token_urlsafe(12)  # 16 characters, beyond the 12 a login needs


def set_demo_logins(rt: Runtime, password: str) -> tuple[DemoLogin, ...]:
    """Give each demo login ``password``, making the login where it is missing."""
    for login in DEMO_LOGINS:
        try:
            access.disable_user(rt, SYSTEM, login.staff_id)
        except NotFound:
            pass  # no login yet: made below
        except Conflict:
            pass  # disabled already: enabled again below
        access.add_user(rt, SYSTEM, login.staff_id, password, admin=login.admin)
    return DEMO_LOGINS
