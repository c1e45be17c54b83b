"""``caseloop users``: logins for members of staff (their role and team come from the staff list).

A password is read from standard input, never from an argument (arguments show in process lists
and shell history): asked twice at a terminal, read once from a pipe.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from typing import Annotated, TextIO

import typer

from cli.app import app, cli_context
from workflow.errors import Invalid

users_app = typer.Typer(help="Logins for the web: members of staff and admins.", no_args_is_help=True)
app.add_typer(users_app, name="users")

StaffId = Annotated[str, typer.Argument(metavar="STAFF_ID", help="Their id in the staff list.")]


def read_password(stdin: TextIO | None = None, ask: Callable[[str], str] = getpass.getpass) -> str:
    stdin = stdin or sys.stdin
    if stdin.isatty():
        first = ask("Password: ")
        if ask("The same password again: ") != first:
            raise Invalid("the two passwords differ: nothing was changed")
        return first
    line = stdin.readline()
    return line.removesuffix("\n").removesuffix("\r")


@users_app.command("add")
def users_add(
    ctx: typer.Context,
    staff_id: StaffId,
    admin: Annotated[bool, typer.Option("--admin", help="May manage logins and API tokens.")] = False,
    no_cases: Annotated[
        bool, typer.Option("--no-cases", help="With --admin: an admin-only login that reads no case.")
    ] = False,
) -> None:
    """Make a login for a member of staff (or enable a disabled one with a new password)."""
    from services import access
    from services.actors import SYSTEM

    c = cli_context(ctx)
    password = read_password()
    with c.runtime() as rt:
        login = access.add_user(rt, SYSTEM, staff_id, password, admin=admin, reads_cases=not no_cases)
    what = "admin-only login" if not login.reads_cases else f"{login.role} in {login.team}"
    if login.admin and login.reads_cases:
        what += ", admin"
    typer.echo(f"{'added' if login.created else 'enabled again'}: {login.staff_id} ({what})")


@users_app.command("disable")
def users_disable(ctx: typer.Context, staff_id: StaffId) -> None:
    """Disable a login; its sessions end at once."""
    from services import access
    from services.actors import SYSTEM

    c = cli_context(ctx)
    with c.runtime() as rt:
        ended = access.disable_user(rt, SYSTEM, staff_id)
    typer.echo(f"disabled: {staff_id} ({ended} session{'s' if ended != 1 else ''} ended)")
