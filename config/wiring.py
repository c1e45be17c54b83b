"""The composition point: real adapters built from settings, for the CLI, workers and tests."""

from __future__ import annotations

from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from config.policy import load_policy
from config.settings import Settings
from messaging.channels import Channel, FileChannel, SmtpChannel
from messaging.channels.printing import PrintChannel
from migrations import current_head
from services.handlers import handlers
from services.runtime import Runtime, SweepTimings
from workflow.bus import HANDLERS
from workflow.clocks import Rulebook
from workflow.db import Database
from workflow.errors import CaseloopError, Unavailable
from workflow.timeutil import Clock, utc_now

__all__ = [
    "Runtime",
    "SweepTimings",
    "build_channels",
    "build_runtime",
    "check_schema",
    "letter_channels",
    "serving",
]


class SchemaNotReady(CaseloopError):
    """The database has not been migrated to this version of caseloop."""


def check_schema(rt: Runtime) -> None:
    head = current_head()
    # A reading transaction: every command checks this first, and on SQLite a plain connection's
    # transaction would begin IMMEDIATE and wait for the write lock (a read-only command behind
    # an import).
    try:
        with rt.db.reading() as session:
            conn = session.connection()
            found = None
            if inspect(conn).has_table("alembic_version"):
                found = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError as exc:
        # The first thing every command does: a database that is down says so in one line (a
        # connection's error names a host or a file, never a case).
        first = str(exc.orig).strip().splitlines()[0][:200] if str(exc.orig).strip() else ""
        raise Unavailable(
            f"the database cannot be used: {first or type(exc.orig).__name__}; check CASELOOP_DATABASE_URL"
        ) from exc
    if found != head:
        raise SchemaNotReady(
            f"the database is at schema {found or 'none'}, caseloop needs {head}: run `caseloop db upgrade`"
        )


def build_channels(settings: Settings) -> dict[str, Channel]:
    channels: dict[str, Channel] = {
        "file": FileChannel(settings.outbox_dir, settings.mail_from),
        "print": PrintChannel(settings.print_dir),
    }
    if settings.notify_api_key and settings.notify_email_template_id:
        # Only where Notify is set up: its client (and requests behind it) costs every process
        # a fifth of a second to import.
        from messaging.channels.notify import NotifyEmailChannel, NotifyLetterChannel

        channels["notify_email"] = NotifyEmailChannel(
            settings.notify_api_key, settings.notify_email_template_id, base_url=settings.notify_base_url
        )
        channels["notify_letter"] = NotifyLetterChannel(
            settings.notify_api_key, base_url=settings.notify_base_url
        )
    if settings.smtp_url:
        channels["smtp"] = SmtpChannel(
            settings.smtp_url,
            sender=settings.mail_from,
            timeout=settings.smtp_timeout,
            verify_tls=settings.smtp_verify_tls,
        )
    return channels


def letter_channels(channels: dict[str, Channel]) -> dict[str, str]:
    """Letters go by Notify where it is set up; emails otherwise by SMTP, else to the outbox folder;
    posted letters otherwise to the post room's print batch."""
    email = next(name for name in ("notify_email", "smtp", "file") if name in channels)
    post = "notify_letter" if "notify_letter" in channels else "print"
    return {"email": email, "post": post}


def build_runtime(settings: Settings, clock: Clock = utc_now) -> Runtime:
    channels = build_channels(settings)
    book = Rulebook.build(load_policy(settings), settings.zone, letter_channels(channels))
    return Runtime(
        settings=settings,
        db=Database(settings.database_url, session_info={HANDLERS: handlers(book)}),
        book=book,
        channels=channels,
        clock=clock,
    )


def serving(rt: Runtime) -> Runtime:
    """The runtime of a process that serves requests: what a request makes due (an event posted,
    a letter approved) wakes the workers at once, instead of waiting up to a sweep interval."""
    if rt.settings.prompt_dispatch:
        from config.celery import waker  # Celery loads only in the processes that wake workers

        rt.wake = waker(rt.settings)
    return rt
