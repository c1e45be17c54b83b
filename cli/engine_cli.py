"""CLI commands for the engine: the schema, events in, a case, the overdue queue, the tick,
the lifecycle diagrams and the demo borough."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO

import typer

from cli.app import (
    AsStaff,
    actor_for,
    app,
    case_app,
    cli_context,
    db_app,
    events_app,
    queue_app,
    workflow_app,
)
from cli.output import emit_json, emit_table
from workflow.errors import CaseloopError

# The services each command calls are imported in its body (see cli.app): only the command run
# pays for what it uses.
if TYPE_CHECKING:
    from services.runtime import Runtime
    from workflow.intake import ImportReport


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Create or migrate the database schema to this version of caseloop."""
    from config.settings import get_settings
    from migrations import upgrade

    upgrade(get_settings().database_url)
    typer.echo("database schema is up to date")


@events_app.command("import")
def events_import(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="A JSON Lines file of events, or - for standard input.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Import events. Exits 0 when every line was taken, 1 when lines were rejected (they are
    kept: see `events rejected`), 2 when the import itself failed (unreadable input, no database)."""
    from cli.progress import import_progress, lines_in
    from services import intake
    from services.actors import SYSTEM

    c = cli_context(ctx)
    with c.runtime() as rt:
        if file == "-":
            with import_progress(None, as_json) as told:
                report = intake.import_stream(rt, SYSTEM, sys.stdin.buffer, "<stdin>", c.clock(), told)
        else:
            with _open(file) as stream, import_progress(lines_in(file), as_json) as told:
                report = intake.import_stream(rt, SYSTEM, stream, Path(file).name, c.clock(), told)
    if as_json:
        emit_json({**asdict(report), "ok": report.ok})
    else:
        _print_import(report)
    if not report.ok:
        raise typer.Exit(1)


def _open(file: str) -> BinaryIO:
    path = Path(file)
    if not path.exists():
        raise CaseloopError(f"{file}: no such file")
    if not path.is_file():
        raise CaseloopError(f"{file}: not a file")
    try:
        return path.open("rb")  # bytes: each line is decoded on its own
    except OSError as exc:
        raise CaseloopError(f"{file}: cannot be read ({exc.strerror})") from exc


def _print_import(report: ImportReport) -> None:
    for note in report.duplicates:
        typer.echo(f"duplicate: {note}")
    for warning in report.warnings:
        typer.echo(f"warning: {warning}")
    for reason in report.rejected:
        typer.echo(f"rejected: {reason}", err=True)
    typer.echo(
        f"accepted {report.accepted}, duplicate {len(report.duplicates)}, rejected {len(report.rejected)}"
        + (f", warnings {len(report.warnings)}" if report.warnings else "")
        + (
            f" (and {report.retried_accepted} earlier rejections accepted on retry)"
            if report.retried_accepted
            else ""
        )
    )


@events_app.command("rejected")
def events_rejected(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """List rejected events and why; they are kept, and retried with `events retry`."""
    from services import intake
    from services.actors import SYSTEM

    with cli_context(ctx).runtime() as rt:
        rows = [asdict(r) for r in intake.list_rejected(rt, SYSTEM)]
    if as_json:
        emit_json(rows)
    else:
        emit_table(
            rows, ["id", "event", "case", "type", "source", "line", "kind", "reason"], "no rejected events"
        )


@events_app.command("retry")
def events_retry(ctx: typer.Context) -> None:
    """Retry rejected events that their order could explain (an unknown case, a state not reached)."""
    from services import intake
    from services.actors import SYSTEM

    c = cli_context(ctx)
    with c.runtime() as rt:
        report = intake.retry_rejected(rt, SYSTEM, c.clock())
    typer.echo(f"accepted {report.accepted}, still rejected {report.still_rejected}")


@events_app.command("dismiss")
def events_dismiss(
    ctx: typer.Context,
    received_id: Annotated[int, typer.Argument(metavar="ID", help="The id from `events rejected`.")],
    by: Annotated[str, typer.Option("--by", help="Your staff id or name.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is set aside for good.")],
) -> None:
    """Set a rejected event aside for good: it is kept, with who and why, and never retried."""
    from services import intake
    from services.actors import SYSTEM

    c = cli_context(ctx)
    with c.runtime() as rt:
        intake.dismiss_rejected(rt, SYSTEM, received_id, by, reason, c.clock())
    typer.echo(f"dismissed received event {received_id}")


@case_app.command("show")
def case_show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="The case reference.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    as_staff: AsStaff = None,
) -> None:
    """A case's state and clocks."""
    from services import queries

    c = cli_context(ctx)
    with c.runtime() as rt:
        view = queries.case(rt, actor_for(rt, as_staff), ref, c.clock())
    if as_json:
        emit_json(view)
        return
    typer.echo(
        f"case {view['case']}  state {view['state']}  episode {view['episode']}  "
        f"team {view['team']}  worker {view['worker'] or '-'}"
    )
    emit_table(view["clocks"], ["name", "started", "due", "status", "stopped"], "no clocks")


@queue_app.command("overdue")
def queue_overdue(
    ctx: typer.Context,
    team: Annotated[str | None, typer.Option("--team", help="Only this team's cases.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Show only the first N.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    as_staff: AsStaff = None,
) -> None:
    """Clocks past their due date, most overdue first, with who has each case, why it is late and
    what to do."""
    from services import queries

    c = cli_context(ctx)
    with c.runtime() as rt:
        actor = actor_for(rt, as_staff)
        if limit:
            page = queries.overdue_page(rt, actor, limit, 0, team, c.clock())
            rows, total = page.items, page.total
        else:
            rows = queries.overdue(rt, actor, team, c.clock())
            total = len(rows)
    if not as_json and limit and total > limit:
        typer.echo(f"{total} overdue; the {limit} most overdue:")
    if as_json:
        emit_json(rows)
    else:
        emit_table(
            rows,
            ["case", "clock", "due", "working_days_overdue", "allocation", "team", "reason", "to_do"],
            "nothing is overdue",
        )


@app.command("tick")
def tick(ctx: typer.Context) -> None:
    """One pass of the time-driven work: clocks, breaches, reminders, and sending what is due.

    The beat's sweeper runs the same pass every minute and hands the sending to workers; here the
    messages claimed are sent in this process after the pass, so a tick works with no worker running.
    """
    from services import sweep as sweeping
    from services.actors import SYSTEM

    c = cli_context(ctx)
    with c.runtime() as rt:
        done = sweeping.tick(rt, SYSTEM, c.clock())
    typer.echo(done.sweep.summary())
    if done.sweep.to_deliver:
        outcomes = done.outcomes
        typer.echo(
            f"sent {outcomes['sent']}, retrying {outcomes['retrying']}, failed {outcomes['failed']}"
            + (f", held {outcomes['held']}" if outcomes["held"] else "")
            + (f", unknown {outcomes['unknown']}" if outcomes["unknown"] else "")
        )


@workflow_app.command("diagram")
def workflow_diagram(
    outbox: Annotated[bool, typer.Option("--outbox", help="The outbox lifecycle instead.")] = False,
) -> None:
    """Print the case lifecycle (or, with --outbox, the outbox lifecycle) as a Mermaid diagram."""
    from messaging import lifecycle as outbox_lifecycle
    from workflow import lifecycle

    typer.echo(outbox_lifecycle.mermaid() if outbox else lifecycle.mermaid(), nl=False)


def _demo_logins(rt: Runtime, path: Path) -> None:
    from services import demo as demo_accounts
    from workflow.private_files import private_dir, write_private

    password = demo_accounts.new_password()
    made = demo_accounts.set_demo_logins(rt, password)
    lines = [
        f"The pages: {rt.settings.base_url.rstrip('/')}/ (served by `caseloop run`)",
        "Demo logins, for this demo database only (a new password each `caseloop demo`):",
    ]
    for d in made:
        also = "  (also manages logins)" if d.admin else ""
        lines.append(f"  {d.role:<16} {d.staff_id:<6} password {password}{also}")
    private_dir(path.parent)
    write_private(path, ("\n".join(lines) + "\n").encode())
    typer.echo(f"demo logins for a social worker, a team manager and a service manager: see {path}")


@app.command("demo")
def demo(
    ctx: typer.Context,
    weeks: Annotated[int, typer.Option(min=1, max=104, help="Weeks of referrals.")] = 8,
    per_week: Annotated[int, typer.Option(min=1, max=5000, help="Referrals a week.")] = 350,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same borough.")] = 2026,
    output: Annotated[Path, typer.Option(help="Where to write the events.")] = Path("var/demo-events.jsonl"),
    logins: Annotated[
        Path, typer.Option(help="Where to write the demo logins (a new password each run).")
    ] = Path("var/demo-logins.txt"),
) -> None:
    """Write a synthetic borough's events and import them (once: a database that has the borough
    already keeps it, since its events were dated from the day it was first made). Gives a social
    worker, a team manager and a service manager logins with a new password, written to --logins."""
    from services import intake, queries
    from services import sweep as sweeping
    from services.actors import SYSTEM
    from services.people import import_staff
    from workflow.demo import Borough, first_ref, staff_csv, write_jsonl

    c = cli_context(ctx)
    now = c.clock()
    with c.runtime() as rt:
        people = import_staff(rt, SYSTEM, staff_csv().splitlines(), now)
        typer.echo(f"staff: created {people.created}, updated {people.updated}, unchanged {people.unchanged}")
        _demo_logins(rt, logins)
        if queries.case_exists(rt, SYSTEM, first_ref()):
            ticked = sweeping.update_clocks(rt, SYSTEM, now)
            typer.echo(
                "the demo borough is already in this database: not made again "
                f"({ticked.breached} clocks newly breached); `make clean` starts afresh"
            )
            return
        borough = Borough(
            seed=seed, weeks=weeks, per_week=per_week, zone=rt.settings.zone, calendar=rt.book.calendar
        )
        count = write_jsonl(borough.events(now), output)
        typer.echo(f"wrote {count} events for {weeks * per_week} referrals to {output}")
        with output.open(encoding="utf-8") as lines:
            report = intake.import_events(rt, SYSTEM, lines, output.name, now)
        ticked = sweeping.update_clocks(rt, SYSTEM, now)
    typer.echo(
        f"accepted {report.accepted}, duplicate {len(report.duplicates)}, "
        f"rejected {len(report.rejected)}; {ticked.breached} clocks breached"
    )
    if not report.ok:
        raise typer.Exit(1)
