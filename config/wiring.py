"""The composition point: real adapters built from settings, for the CLI, workers and tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property

from sqlalchemy import inspect, text
from sqlalchemy.orm import Session

from config.council import load_council
from config.policy import load_policy
from config.settings import Settings
from letters.catalogue import Catalogue
from letters.channels import Channel, FileChannel, SmtpChannel
from letters.delivery import Deliverer, Renderer, RetryPolicy
from letters.digest import DigestRenderer
from letters.letters_renderer import LetterRenderer
from letters.notify import NotifyEmailChannel, NotifyLetterChannel
from letters.printing import PrintChannel
from letters.rendering import Templates
from letters.sweep import SweepReport, SweepTimings, run_sweep
from migrations import current_head
from workflow.clocks import Rulebook
from workflow.db import Database
from workflow.errors import CaseloopError
from workflow.fulfilment import letter_failed, letter_sent
from workflow.outbox import OutboxMessage
from workflow.reminders import DIGEST_KIND
from workflow.timeutil import Clock, utc_now


class SchemaNotReady(CaseloopError):
    """The database has not been migrated to this version of caseloop."""


@dataclass
class Runtime:
    settings: Settings
    db: Database
    book: Rulebook
    channels: dict[str, Channel]
    clock: Clock = field(default=utc_now)

    @cached_property
    def catalogue(self) -> Catalogue:
        return Catalogue().load()

    @cached_property
    def letters(self) -> LetterRenderer:
        council = load_council(self.settings.council_file)
        return LetterRenderer(self.catalogue, council, self.book, self.settings.pdf_cache_dir, self.clock)

    def on_sent(self, session: Session, message: OutboxMessage, at: datetime) -> None:
        letter_sent(session, self.book, message, at)

    def on_failed(self, session: Session, message: OutboxMessage, at: datetime, why: str) -> None:
        letter_failed(session, self.book, message, at, why)

    def sweep(self, now: datetime) -> SweepReport:
        return run_sweep(
            self.db,
            self.book,
            self.channels,
            self.staff_channel,
            self.timings,
            now,
            on_sent=self.on_sent,
            on_failed=self.on_failed,
        )

    @property
    def staff_channel(self) -> str:
        """Emails to staff go by SMTP where it is configured, else to the outbox folder."""
        return "smtp" if "smtp" in self.channels else "file"

    @property
    def timings(self) -> SweepTimings:
        return SweepTimings(
            sending_timeout=timedelta(seconds=self.settings.sending_timeout),
            redispatch_after=timedelta(seconds=self.settings.redispatch_after),
        )

    def deliverer(self) -> Deliverer:
        letter_keys = self.catalogue.keys()
        renderers: dict[str, Renderer] = dict.fromkeys(letter_keys, self.letters)
        renderers[DIGEST_KIND] = DigestRenderer(Templates(), self.book, self.settings.base_url)
        return Deliverer(
            db=self.db,
            channels=self.channels,
            renderers=renderers,
            retry=RetryPolicy(self.settings.max_attempts, self.settings.retry_base_seconds),
            clock=self.clock,
            on_sent=self.on_sent,
            on_failed=self.on_failed,
        )

    def check_schema(self) -> None:
        head = current_head()
        with self.db.engine.connect() as conn:
            found = None
            if inspect(conn).has_table("alembic_version"):
                found = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        if found != head:
            raise SchemaNotReady(
                f"the database is at schema {found or 'none'}, caseloop needs {head}: "
                "run `caseloop db upgrade`"
            )

    def close(self) -> None:
        self.db.dispose()


def build_channels(settings: Settings) -> dict[str, Channel]:
    channels: dict[str, Channel] = {
        "file": FileChannel(settings.outbox_dir, settings.mail_from),
        "print": PrintChannel(settings.print_dir),
    }
    if settings.notify_api_key and settings.notify_email_template_id:
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
    return Runtime(
        settings=settings,
        db=Database(settings.database_url),
        book=Rulebook.build(load_policy(settings), settings.zone, letter_channels(channels)),
        channels=channels,
        clock=clock,
    )
