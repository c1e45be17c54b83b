"""CLI commands for staff, the outbox and reminders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select

from cli.main import _ctx, outbox_app, reminders_app, staff_app
from cli.output import emit_json, emit_table
from workflow import reminders, staff
from workflow.errors import CaseloopError
from workflow.model import Case
from workflow.outbox import OutboxMessage, Status


@staff_app.command("import")
def staff_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV with the header id,name,email,role,team,manager_id.")],
) -> None:
    """Add or update staff (an idempotent upsert). Exits 1 if any row was rejected."""
    c = _ctx(ctx)
    if not file.is_file():
        raise CaseloopError(f"{file}: no such file")
    with c.runtime() as rt, rt.db.transaction() as session, file.open(encoding="utf-8", newline="") as f:
        report = staff.import_csv(session, f, c.clock())
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
) -> None:
    """Outgoing messages, newest first. Failed and unknown ones need a person."""
    if status is not None and status not in {s.value for s in Status}:
        raise CaseloopError(f"--status: {status!r} is not one of {', '.join(s.value for s in Status)}")
    with _ctx(ctx).runtime() as rt, rt.db.transaction() as session:
        query = select(OutboxMessage, Case.ref).outerjoin(Case, Case.id == OutboxMessage.case_id)
        if case is not None:
            query = query.where(Case.ref == case)
        if status is not None:
            query = query.where(OutboxMessage.status == status)
        rows = [
            {
                "id": m.id,
                "case": ref,
                "kind": m.kind,
                "recipient_role": m.recipient_role,
                "recipient": m.recipient,
                "channel": m.channel,
                "status": m.status,
                "attempts": m.attempts,
                "created": m.created_at.isoformat(),
                "sent": m.sent_at.isoformat() if m.sent_at else None,
                "last_error": m.last_error,
            }
            for m, ref in session.execute(query.order_by(OutboxMessage.id.desc()))
        ]
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
    c = _ctx(ctx)
    with c.runtime() as rt, rt.db.transaction() as session:
        ack = reminders.acknowledge(session, reminder_id, by, note, c.clock())
    typer.echo(f"acknowledged reminder {reminder_id} (acknowledgement {ack.id})")
