"""CLI commands for staff, the outbox list, reminders and duties done by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.app import AsStaff, actor_for, cli_context, duties_app, outbox_app, reminders_app, staff_app
from cli.output import emit_json, emit_table
from services import queries
from services.actors import SYSTEM
from services.casework import acknowledge_reminder, record_duty_done
from services.people import identify, import_staff
from workflow.errors import CaseloopError


@staff_app.command("import")
def staff_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV with the header id,name,email,role,team,manager_id.")],
) -> None:
    """Add or update staff (an idempotent upsert). Exits 1 if any row was rejected."""
    c = cli_context(ctx)
    if not file.is_file():
        raise CaseloopError(f"{file}: no such file")
    with c.runtime() as rt, file.open(encoding="utf-8", newline="") as f:
        report = import_staff(rt, SYSTEM, f, c.clock())
    for reason in report.rejected:
        typer.echo(f"rejected: {reason}", err=True)
    typer.echo(
        f"created {report.created}, updated {report.updated}, unchanged {report.unchanged}, "
        f"rejected {len(report.rejected)}"
    )
    if report.rejected:
        raise typer.Exit(1)


@outbox_app.command("list")
def outbox_list(
    ctx: typer.Context,
    case: Annotated[str | None, typer.Option("--case", help="Only messages about this case.")] = None,
    status: Annotated[str | None, typer.Option("--status", help="Only messages in this status.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    as_staff: AsStaff = None,
) -> None:
    """Outgoing messages, newest first. Failed and unknown ones need a person."""
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
    c = cli_context(ctx)
    with c.runtime() as rt:
        ack = acknowledge_reminder(rt, identify(rt, by), reminder_id, note, c.clock())
    typer.echo(f"acknowledged reminder {reminder_id} (acknowledgement {ack.acknowledgement})")


@duties_app.command("done")
def duties_done(
    ctx: typer.Context,
    case: Annotated[str, typer.Argument(help="The case reference.")],
    duty: Annotated[str, typer.Argument(help="The duty's name, from the policy.")],
    by: Annotated[str, typer.Option("--by", help="Your staff id.")],
) -> None:
    """Record a duty done by hand (a referrer phoned): its clock stops, its unsent letters go no more."""
    c = cli_context(ctx)
    with c.runtime() as rt:
        recorded = record_duty_done(rt, identify(rt, by), case, duty, c.clock())
    typer.echo(f"recorded {duty} on {case} as done" if recorded else f"{duty} on {case} was already recorded")
