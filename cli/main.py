"""``caseloop``: the command line every later part, test and operator drives caseloop through."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from cli.output import emit_json, emit_table
from config.settings import get_settings
from config.wiring import Runtime, build_runtime
from workflow import intake, lifecycle, queries
from workflow.errors import CaseloopError
from workflow.tick import run_tick
from workflow.timeutil import Clock, fixed_clock, utc_now


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
    help="caseloop: statutory clocks, reminders and letters for a children's social care front door.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
events_app = typer.Typer(help="Case events from the case management system.", no_args_is_help=True)
case_app = typer.Typer(help="One case.", no_args_is_help=True)
queue_app = typer.Typer(help="Work queues for managers.", no_args_is_help=True)
workflow_app = typer.Typer(help="The case lifecycle.", no_args_is_help=True)
staff_app = typer.Typer(help="Social workers, managers and teams.", no_args_is_help=True)
outbox_app = typer.Typer(help="Every message caseloop sends, and its status.", no_args_is_help=True)
reminders_app = typer.Typer(help="Reminders to staff.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(events_app, name="events")
app.add_typer(case_app, name="case")
app.add_typer(queue_app, name="queue")
app.add_typer(workflow_app, name="workflow")
app.add_typer(staff_app, name="staff")
app.add_typer(outbox_app, name="outbox")
app.add_typer(reminders_app, name="reminders")


@dataclass
class Context:
    clock: Clock

    @contextmanager
    def runtime(self, *, schema: bool = True) -> Iterator[Runtime]:
        runtime = build_runtime(get_settings(), self.clock)
        try:
            if schema:
                runtime.check_schema()
            yield runtime
        finally:
            runtime.close()


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
        typer.Option("--now", help="Use this ISO 8601 instant (with offset) as the current time."),
    ] = None,
) -> None:
    instant = _parse_now(now)
    ctx.obj = Context(clock=fixed_clock(instant) if instant else utc_now)


def _ctx(ctx: typer.Context) -> Context:
    assert isinstance(ctx.obj, Context)
    return ctx.obj


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Create or migrate the database schema to this version of caseloop."""
    from migrations import upgrade

    upgrade(get_settings().database_url)
    typer.echo("database schema is up to date")


@events_app.command("import")
def events_import(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="A JSON Lines file of events, or - for standard input.")],
) -> None:
    """Import events; exits 0 only when no line was rejected."""
    c = _ctx(ctx)
    with c.runtime() as rt:
        if file == "-":
            report = intake.import_lines(rt.db, rt.book, sys.stdin, "<stdin>", c.clock())
        else:
            path = Path(file)
            if not path.is_file():
                raise CaseloopError(f"{file}: no such file")
            with path.open(encoding="utf-8") as lines:
                report = intake.import_lines(rt.db, rt.book, lines, path.name, c.clock())
    for note in report.duplicates:
        typer.echo(f"duplicate: {note}")
    for reason in report.rejected:
        typer.echo(f"rejected: {reason}", err=True)
    typer.echo(
        f"accepted {report.accepted}, duplicate {len(report.duplicates)}, rejected {len(report.rejected)}"
        + (
            f" (and {report.retried_accepted} earlier rejections accepted on retry)"
            if report.retried_accepted
            else ""
        )
    )
    if not report.ok:
        raise typer.Exit(1)


@events_app.command("rejected")
def events_rejected(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """List rejected events and why; they are kept, and retried with `events retry`."""
    with _ctx(ctx).runtime() as rt, rt.db.transaction() as session:
        rows = [
            {
                "id": r.id,
                "event": r.event_id or r.claimed_id,
                "case": r.case_ref,
                "type": r.type,
                "source": r.source,
                "line": r.line_no,
                "kind": r.rejection_kind,
                "retryable": r.rejection_kind != "malformed",
                "attempts": r.attempts,
                "reason": r.reason,
            }
            for r in intake.list_rejected(session)
        ]
    if as_json:
        emit_json(rows)
    else:
        emit_table(
            rows, ["id", "event", "case", "type", "source", "line", "kind", "reason"], "no rejected events"
        )


@events_app.command("retry")
def events_retry(ctx: typer.Context) -> None:
    """Retry rejected events that their order could explain (an unknown case, a state not reached)."""
    c = _ctx(ctx)
    with c.runtime() as rt:
        report = intake.retry_rejected(rt.db, rt.book, c.clock())
    typer.echo(f"accepted {report.accepted}, still rejected {report.still_rejected}")


@case_app.command("show")
def case_show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="The case reference.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """A case's state and clocks."""
    c = _ctx(ctx)
    with c.runtime() as rt, rt.db.transaction() as session:
        view = queries.case_view(session, rt.book, ref, c.clock())
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
) -> None:
    """Clocks past their due date, most overdue first."""
    c = _ctx(ctx)
    with c.runtime() as rt, rt.db.transaction() as session:
        rows = queries.overdue(session, rt.book, c.clock(), team)
    total = len(rows)
    rows = rows[:limit] if limit else rows
    if not as_json and limit and total > limit:
        typer.echo(f"{total} overdue; the {limit} most overdue:")
    if as_json:
        emit_json(rows)
    else:
        emit_table(
            rows, ["case", "clock", "due", "working_days_overdue", "worker", "team"], "nothing is overdue"
        )


@app.command("tick")
def tick(ctx: typer.Context) -> None:
    """One pass of the time-driven work: clocks, breaches, reminders, and sending what is due.

    The beat's sweeper runs the same pass every minute and hands the sending to workers; here the
    messages claimed are sent in this process, so a tick works with no worker running.
    """
    c = _ctx(ctx)
    with c.runtime() as rt:
        report = rt.sweep(c.clock())
        deliverer = rt.deliverer()
        outcomes = [deliverer.deliver(outbox_id) for outbox_id in report.to_deliver]
    typer.echo(report.summary())
    if outcomes:
        typer.echo(
            f"sent {outcomes.count('sent')}, retrying {outcomes.count('retrying')}, "
            f"failed {outcomes.count('failed')}"
        )


@workflow_app.command("diagram")
def workflow_diagram() -> None:
    """Print the case lifecycle as a Mermaid state diagram."""
    typer.echo(lifecycle.mermaid(), nl=False)


@app.command("demo")
def demo(
    ctx: typer.Context,
    weeks: Annotated[int, typer.Option(min=1, max=104, help="Weeks of referrals.")] = 8,
    per_week: Annotated[int, typer.Option(min=1, max=5000, help="Referrals a week.")] = 350,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same borough.")] = 2026,
    output: Annotated[Path, typer.Option(help="Where to write the events.")] = Path("var/demo-events.jsonl"),
) -> None:
    """Write a synthetic borough's events and import them."""
    from workflow import staff
    from workflow.demo import Borough, staff_csv, write_jsonl

    c = _ctx(ctx)
    now = c.clock()
    with c.runtime() as rt:
        with rt.db.transaction() as session:
            people = staff.import_csv(session, staff_csv().splitlines(), now)
        typer.echo(f"staff: created {people.created}, updated {people.updated}, unchanged {people.unchanged}")
        borough = Borough(
            seed=seed, weeks=weeks, per_week=per_week, zone=rt.settings.zone, calendar=rt.book.calendar
        )
        count = write_jsonl(borough.events(now), output)
        typer.echo(f"wrote {count} events for {weeks * per_week} referrals to {output}")
        with output.open(encoding="utf-8") as lines:
            report = intake.import_lines(rt.db, rt.book, lines, output.name, now)
        ticked = run_tick(rt.db, rt.book, now)
    typer.echo(
        f"accepted {report.accepted}, duplicate {len(report.duplicates)}, "
        f"rejected {len(report.rejected)}; {ticked.breached} clocks breached"
    )
    if not report.ok:
        raise typer.Exit(1)


from cli import letters_cli, processes, staff_outbox  # noqa: E402,F401  (registers their commands)


def run() -> None:
    app()


if __name__ == "__main__":
    run()
