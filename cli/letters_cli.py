"""CLI commands for letters: show, approve and reject outbox messages; templates; the print batch."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from cli.app import AsStaff, actor_for, cli_context, outbox_app, print_app, templates_app
from cli.output import emit_table
from workflow.errors import CaseloopError

# The letters' services (and behind them Jinja2, the PDF tools) load inside the commands that use
# them: see cli.app.
if TYPE_CHECKING:
    from services.letters import Format


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
    as_staff: AsStaff = None,
) -> None:
    """A message as its recipient got it (the copy kept when it was sent, checked against its
    hash), or, not yet sent, as they would get it (rendered now, without sending it)."""
    if fmt == "pdf" and output is None:  # refused before the view is recorded: nobody saw it
        raise CaseloopError("a PDF needs --output FILE")
    from services.letters import show_message

    with cli_context(ctx).runtime() as rt:
        shown = show_message(rt, actor_for(rt, as_staff), outbox_id, _format(fmt))
    typer.echo(shown.summary, err=True)
    _emit(shown.content, output)


def _format(fmt: str) -> Format:
    if fmt not in ("text", "html", "pdf"):
        raise CaseloopError(f"--format: {fmt!r} is not one of text, html, pdf")
    return cast("Format", fmt)


@outbox_app.command("approve")
def outbox_approve(
    ctx: typer.Context,
    outbox_id: Annotated[int, typer.Argument(metavar="ID")],
    by: Annotated[str, typer.Option("--by", help="Your staff id.")],
    note: Annotated[
        str | None, typer.Option("--reason", "--note", help="Why it is safe to send (required).")
    ] = None,
) -> None:
    """Release a held letter: it is sent by the next sweep. Only the case's worker, its team
    manager or that team's service manager may, with a reason."""
    from services.letters import approve_letter
    from services.people import identify

    c = cli_context(ctx)
    with c.runtime() as rt:
        approve_letter(rt, identify(rt, by), outbox_id, note, c.clock())
    typer.echo(f"approved outbox {outbox_id}; it is queued")


@outbox_app.command("reject")
def outbox_reject(
    ctx: typer.Context,
    outbox_id: Annotated[int, typer.Argument(metavar="ID")],
    by: Annotated[str, typer.Option("--by", help="Your staff id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it must not be sent.")],
) -> None:
    """Stop a held letter for good; its duty stays owed until met another way."""
    from services.letters import reject_letter
    from services.people import identify

    c = cli_context(ctx)
    with c.runtime() as rt:
        reject_letter(rt, identify(rt, by), outbox_id, reason, c.clock())
    typer.echo(f"rejected outbox {outbox_id}")


@templates_app.command("list")
def templates_list(ctx: typer.Context) -> None:
    """Every letter template, its version, audience and channels."""
    with cli_context(ctx).runtime(schema=False) as rt:
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
    as_staff: AsStaff = None,
) -> None:
    """Render a template for a case's first eligible recipient, without creating a letter."""
    from services.letters import preview_template

    with cli_context(ctx).runtime() as rt:
        content = preview_template(rt, actor_for(rt, as_staff), key, case, _format(fmt))
    _emit(content, output)


def _batch_day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CaseloopError(f"--date: {value!r} is not a date; give it as YYYY-MM-DD") from None


@print_app.command("batch")
def print_batch(
    ctx: typer.Context,
    day: Annotated[str | None, typer.Option("--date", help="The batch's date (default today).")] = None,
) -> None:
    """Gather the posted letters waiting for the post room into one PDF."""
    from messaging.channels.printing import make_batch

    c = cli_context(ctx)
    with c.runtime(schema=False) as rt:
        when = _batch_day(day) if day else rt.book.local_date(c.clock())
        path = make_batch(rt.settings.print_dir, when)
    typer.echo(f"print batch: {path}" if path else "no letters are waiting to be printed")
