"""The Typer application and its groups, and what every command shares: the clock and the runtime.

Commands live in the modules beside this one; :mod:`cli.main` gathers them. A command only turns
its arguments into a call to a service and the result into output: it never opens a database
session itself.

Start-up is kept cheap: this module and the command modules import Typer and little else at the
top, and each command imports the services it calls inside its body. ``caseloop --help`` then
never loads SQLAlchemy, Celery, WeasyPrint or the Notify client, and a command loads only what
it uses. Names a signature needs (Typer reads the annotations of commands) stay at the top.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Annotated

import typer
from typer.core import TyperGroup

from workflow.errors import CaseloopError

if TYPE_CHECKING:
    from config.wiring import Runtime
    from services.actors import Actor
    from workflow.timeutil import Clock


class _Commands(TyperGroup):
    """Turns caseloop's own errors into one clear line on stderr and exit status 2."""

    def invoke(self, ctx: typer.Context) -> object:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except CaseloopError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc


app = typer.Typer(
    cls=_Commands,
    # Plain help, without Rich's panels: formatting them imports Rich, a tenth of a second or more
    # on every `--help` for boxes around the same text.
    rich_markup_mode=None,
    help="caseloop: statutory clocks, reminders and letters for a children's social care front door.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
events_app = typer.Typer(help="Case events from the case management system.", no_args_is_help=True)
case_app = typer.Typer(help="One case.", no_args_is_help=True)
queue_app = typer.Typer(help="Work queues for managers.", no_args_is_help=True)
workflow_app = typer.Typer(help="The case lifecycle and the outbox lifecycle.", no_args_is_help=True)
staff_app = typer.Typer(help="Social workers, managers and teams.", no_args_is_help=True)
outbox_app = typer.Typer(help="Every message caseloop sends, and its status.", no_args_is_help=True)
reminders_app = typer.Typer(help="Reminders to staff.", no_args_is_help=True)
duty_app = typer.Typer(help="Telling families, referrers and schools by hand.", no_args_is_help=True)
# The old name of the group, kept so scripts that call `duties done` still work.
duties_app = typer.Typer(help="Old name of `duty`.", no_args_is_help=True)
templates_app = typer.Typer(help="Letter templates.", no_args_is_help=True)
print_app = typer.Typer(help="The post room's print batch.", no_args_is_help=True)
for group, name in (
    (db_app, "db"),
    (events_app, "events"),
    (case_app, "case"),
    (queue_app, "queue"),
    (workflow_app, "workflow"),
    (staff_app, "staff"),
    (outbox_app, "outbox"),
    (reminders_app, "reminders"),
    (duty_app, "duty"),
    (templates_app, "templates"),
    (print_app, "print"),
):
    app.add_typer(group, name=name)
app.add_typer(duties_app, name="duties", hidden=True)

# The option that lets an operator see what a member of staff would see.
AsStaff = Annotated[
    str | None, typer.Option("--as", help="See only what this member of staff may see (their staff id).")
]


@dataclass
class Context:
    """What the options before the command gave: the instant to use as now, if any."""

    now: datetime | None = None

    @cached_property
    def clock(self) -> Clock:
        from workflow.timeutil import fixed_clock, utc_now

        return fixed_clock(self.now) if self.now else utc_now

    @contextmanager
    def runtime(self, *, schema: bool = True) -> Iterator[Runtime]:
        # The settings are read here, when a command first needs them, never at import.
        from config.settings import get_settings
        from config.wiring import build_runtime, check_schema

        runtime = build_runtime(get_settings(), self.clock)
        try:
            if schema:
                check_schema(runtime)
            yield runtime
        finally:
            runtime.close()


def actor_for(rt: Runtime, staff_id: str | None) -> Actor:
    """A member of staff named on the command line, or caseloop itself (the operator's shell)."""
    from services.actors import SYSTEM
    from services.people import identify

    return SYSTEM if staff_id is None else identify(rt, staff_id)


def _parse_now(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        instant = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 date-time") from exc
    if instant.tzinfo is None:
        raise typer.BadParameter(f"{value!r} needs a UTC offset, e.g. 2026-11-30T09:00:00+00:00")
    return instant


@app.callback()
def main(
    ctx: typer.Context,
    now: Annotated[
        str | None,
        typer.Option(
            "--now", metavar="INSTANT", help="Use this ISO 8601 instant (with offset) as the current time."
        ),
    ] = None,
) -> None:
    ctx.obj = Context(now=_parse_now(now))


def cli_context(ctx: typer.Context) -> Context:
    assert isinstance(ctx.obj, Context)
    return ctx.obj
