"""CLI commands for letters: show, approve and reject outbox messages; templates; the print batch."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

import typer
from sqlalchemy import select

from cli.main import _ctx, app, outbox_app
from cli.output import emit_table
from letters.printing import make_batch
from workflow import review
from workflow.duties import recipients
from workflow.errors import CaseloopError, NotFound
from workflow.model import Case
from workflow.outbox import OutboxMessage, Status

templates_app = typer.Typer(help="Letter templates.", no_args_is_help=True)
print_app = typer.Typer(help="The post room's print batch.", no_args_is_help=True)
app.add_typer(templates_app, name="templates")
app.add_typer(print_app, name="print")

Format = Literal["text", "html", "pdf"]


def _emit(content: str | bytes, output: Path | None) -> None:
    if output is not None:
        output.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        typer.echo(f"wrote {output}", err=True)
    elif isinstance(content, bytes):
        raise CaseloopError("a PDF needs --output FILE")
    else:
        sys.stdout.write(content)


@outbox_app.command("show")
def outbox_show(
    ctx: typer.Context,
    outbox_id: Annotated[int, typer.Argument(metavar="ID")],
    fmt: Annotated[str, typer.Option("--format", help="text, html or pdf")] = "text",
    output: Annotated[Path | None, typer.Option("--output", help="Write to this file.")] = None,
) -> None:
    """Render a message as its recipient would get it (without sending it)."""
    if fmt not in ("text", "html", "pdf"):
        raise CaseloopError(f"--format: {fmt!r} is not one of text, html, pdf")
    with _ctx(ctx).runtime() as rt, rt.db.transaction() as session:
        row = session.get(OutboxMessage, outbox_id)
        if row is None:
            raise NotFound(f"no outbox message {outbox_id}")
        if row.duty is None:
            email = rt.deliverer().renderers[row.kind](session, row)
            content: str | bytes = email.html if fmt == "html" else email.text
            if fmt == "pdf":
                raise CaseloopError("only letters have a PDF")
        else:
            rendered, _ = rt.letters.render(session, row)
            content = {"text": rendered.text, "html": rendered.html}.get(fmt) or rt.letters.pdf(rendered)
        reasons = "; ".join(row.payload.get("hold_reasons") or [])
        typer.echo(
            f"outbox {row.id}: {row.kind} to {row.recipient_role} {row.recipient} by "
            f"{row.channel}, {row.status}" + (f" ({reasons})" if reasons else ""),
            err=True,
        )
        session.rollback()  # showing is not sending: record nothing
    _emit(content, output)


@outbox_app.command("approve")
def outbox_approve(
    ctx: typer.Context,
    outbox_id: Annotated[int, typer.Argument(metavar="ID")],
    by: Annotated[str, typer.Option("--by", help="Your staff id.")],
    note: Annotated[str | None, typer.Option("--note", help="Why it is safe to send.")] = None,
) -> None:
    """Release a held letter: it is sent by the next sweep."""
    c = _ctx(ctx)
    with c.runtime() as rt, rt.db.transaction() as session:
        review.approve(session, outbox_id, by, note, c.clock())
    typer.echo(f"approved outbox {outbox_id}; it is queued")


@outbox_app.command("reject")
def outbox_reject(
    ctx: typer.Context,
    outbox_id: Annotated[int, typer.Argument(metavar="ID")],
    by: Annotated[str, typer.Option("--by", help="Your staff id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it must not be sent.")],
) -> None:
    """Stop a held letter for good; its duty stays owed until met another way."""
    c = _ctx(ctx)
    with c.runtime() as rt, rt.db.transaction() as session:
        review.reject(session, outbox_id, by, reason, c.clock())
    typer.echo(f"rejected outbox {outbox_id}")


@templates_app.command("list")
def templates_list(ctx: typer.Context) -> None:
    """Every letter template, its version, audience and channels."""
    with _ctx(ctx).runtime(schema=False) as rt:
        rows = [
            {
                "key": e.key,
                "version": e.version,
                "audience": e.audience,
                "channels": ",".join(e.channels),
                "description": e.description,
            }
            for e in rt.catalogue.entries()
        ]
    emit_table(rows, ["key", "version", "audience", "channels", "description"], "no templates")


@templates_app.command("check")
def templates_check(ctx: typer.Context) -> None:
    """Check every template against the manifest; exits 1 naming each problem."""
    from letters.catalogue import Catalogue

    problems = Catalogue().check()
    for problem in problems:
        typer.echo(f"problem: {problem}", err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"{len(Catalogue().keys())} templates checked: no problems")


@templates_app.command("preview")
def templates_preview(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="The template key.")],
    case: Annotated[str, typer.Option("--case", help="The case whose data fills the letter.")],
    fmt: Annotated[str, typer.Option("--format", help="text, html or pdf")] = "text",
    output: Annotated[Path | None, typer.Option("--output", help="Write to this file.")] = None,
) -> None:
    """Render a template for a case's first eligible recipient, without creating a letter."""
    with _ctx(ctx).runtime() as rt, rt.db.transaction() as session:
        entry = rt.catalogue.entry(key)
        found = session.scalar(select(Case).where(Case.ref == case))
        if found is None:
            raise NotFound(f"no case {case!r}")
        duty = next((d for d in rt.book.policy.duties if d.audience == entry.audience), None)
        if duty is None:
            raise CaseloopError(f"no duty in the policy writes to {entry.audience}")
        people, skipped = recipients(found, duty)
        if not people:
            raise CaseloopError(f"case {case} has no {entry.audience} recipient: {'; '.join(skipped)}")
        draft = OutboxMessage(
            id=0,
            kind=key,
            case_id=found.id,
            recipient_role=people[0].role,
            recipient=people[0].key,
            address=people[0].address,
            channel="preview",
            status=Status.HELD.value,
            duty=duty.name,
            idempotency_key="preview",
            payload={"medium": people[0].medium},
        )
        rendered, _ = rt.letters.render(session, draft)
        content = {"text": rendered.text, "html": rendered.html}.get(fmt) or rt.letters.pdf(rendered)
        session.rollback()
    _emit(content, output)


@print_app.command("batch")
def print_batch(
    ctx: typer.Context,
    day: Annotated[str | None, typer.Option("--date", help="The batch's date (default today).")] = None,
) -> None:
    """Gather the posted letters waiting for the post room into one PDF."""
    c = _ctx(ctx)
    with c.runtime(schema=False) as rt:
        when = date.fromisoformat(day) if day else rt.book.local_date(c.clock())
        path = make_batch(rt.settings.print_dir, when)
    typer.echo(f"print batch: {path}" if path else "no letters are waiting to be printed")
