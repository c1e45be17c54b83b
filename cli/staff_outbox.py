"""CLI commands for staff, the outbox list, reminders and duties done by hand."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from cli.app import (
    AsStaff,
    actor_for,
    cli_context,
    duties_app,
    duty_app,
    outbox_app,
    reminders_app,
    staff_app,
)
from cli.output import emit_json, emit_table
from workflow.errors import CaseloopError

# Each command imports the services it calls (see cli.app).


@staff_app.command("import")
def staff_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV with the header id,name,email,role,team,manager_id.")],
) -> None:
    """Add or update staff (an idempotent upsert). Exits 1 if any row was rejected."""
    from services.actors import SYSTEM
    from services.people import import_staff

    c = cli_context(ctx)
    if not file.is_file():
        raise CaseloopError(f"{file}: no such file")
    with c.runtime() as rt, file.open(encoding="utf-8", newline="") as f:
        report = import_staff(rt, SYSTEM, f, c.clock())
    for reason in report.rejected:
        typer.echo(f"rejected: {reason}", err=True)
    for note in report.kept_as_leavers:
        typer.echo(f"kept as a leaver: {note}", err=True)
    typer.echo(
        f"created {report.created}, updated {report.updated}, unchanged {report.unchanged}, "
        f"rejected {len(report.rejected)}"
    )
    if report.rejected:
        raise typer.Exit(1)


@staff_app.command("leave")
def staff_leave(
    ctx: typer.Context,
    staff_id: Annotated[str, typer.Argument(metavar="ID", help="Their staff id.")],
    on: Annotated[
        str | None, typer.Option("--on", metavar="YYYY-MM-DD", help="Their first day gone (default today).")
    ] = None,
) -> None:
    """Record a leaver: from that day no reminders or digests reach them, their cases count as
    unallocated and go to their manager, and they may no longer act."""
    from services.actors import SYSTEM
    from services.people import leave

    c = cli_context(ctx)
    day = _parse_day("--on", on) if on else None
    with c.runtime() as rt:
        left = leave(rt, SYSTEM, staff_id, day, c.clock())
    said = f"{staff_id} leaves on {left.on.isoformat()}"
    if left.before and left.before != left.on:
        said += f" (was {left.before.isoformat()})"
    if left.digests_cancelled:
        said += f"; {left.digests_cancelled} waiting digest(s) cancelled"
    typer.echo(said)


@staff_app.command("rejoin")
def staff_rejoin(
    ctx: typer.Context,
    staff_id: Annotated[str, typer.Argument(metavar="ID", help="Their staff id.")],
) -> None:
    """Bring a leaver back (importing the staff file never does): reminded, and may act, again."""
    from services.actors import SYSTEM
    from services.people import rejoin

    c = cli_context(ctx)
    with c.runtime() as rt:
        rejoin(rt, SYSTEM, staff_id, c.clock())
    typer.echo(f"{staff_id} is back")


def _parse_day(option: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint=option) from exc


@outbox_app.command("list")
def outbox_list(
    ctx: typer.Context,
    case: Annotated[str | None, typer.Option("--case", help="Only messages about this case.")] = None,
    status: Annotated[str | None, typer.Option("--status", help="Only messages in this status.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    as_staff: AsStaff = None,
) -> None:
    """Outgoing messages, newest first. Failed and unknown ones need a person."""
    from services import queries

    with cli_context(ctx).runtime() as rt:
        rows = queries.outbox(rt, actor_for(rt, as_staff), case, status)
    if as_json:
        emit_json(rows)
    else:
        emit_table(
            rows,
            ["id", "case", "kind", "recipient_role", "recipient", "channel", "status", "created", "sent"],
            "the outbox is empty",
        )


@reminders_app.command("ack")
def reminders_ack(
    ctx: typer.Context,
    reminder_id: Annotated[int, typer.Argument(metavar="ID", help="The reminder's number, from the email.")],
    by: Annotated[str, typer.Option("--by", help="Your staff id.")],
    note: Annotated[str | None, typer.Option("--note", help="What you are doing about it.")] = None,
) -> None:
    """Acknowledge a reminder: no repeats to you for that clock until it escalates further."""
    from services.casework import acknowledge_reminder
    from services.people import identify

    c = cli_context(ctx)
    with c.runtime() as rt:
        ack = acknowledge_reminder(rt, identify(rt, by), reminder_id, note, c.clock())
    typer.echo(f"acknowledged reminder {reminder_id} (acknowledgement {ack.acknowledgement})")


class How(StrEnum):
    """The choices of ``--how`` (workflow.events.HOW_DONE, which a test keeps equal)."""

    PHONE = "phone"
    MEETING = "meeting"
    LETTER = "letter"


@duty_app.command("done")
def duty_done(
    ctx: typer.Context,
    case: Annotated[str, typer.Argument(help="The case reference.")],
    duty: Annotated[str, typer.Argument(help="The duty's name, from the policy.")],
    by: Annotated[str, typer.Option("--by", help="Your staff id.")],
    how: Annotated[How, typer.Option("--how", help="How you told them.", case_sensitive=False)],
) -> None:
    """Record a duty done by hand (a referrer told by phone): its clock stops, its unsent letters
    go no more, and the case history says how and by whom."""
    _record_done(ctx, case, duty, by, how.value)


@duties_app.command("done", hidden=True)
def duties_done(
    ctx: typer.Context,
    case: Annotated[str, typer.Argument(help="The case reference.")],
    duty: Annotated[str, typer.Argument(help="The duty's name, from the policy.")],
    by: Annotated[str, typer.Option("--by", help="Your staff id.")],
    how: Annotated[How | None, typer.Option("--how", help="How you told them.", case_sensitive=False)] = None,
) -> None:
    """The old `duty done` (kept for scripts; `--how` is optional here)."""
    _record_done(ctx, case, duty, by, how.value if how else None)


def _record_done(ctx: typer.Context, case: str, duty: str, by: str, how: str | None) -> None:
    from services.casework import record_duty_done
    from services.people import identify

    c = cli_context(ctx)
    with c.runtime() as rt:
        recorded = record_duty_done(rt, identify(rt, by), case, duty, c.clock(), how=how)
    typer.echo(f"recorded {duty} on {case} as done" if recorded else f"{duty} on {case} was already recorded")
