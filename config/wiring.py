"""The composition point: real adapters built from settings, for the CLI, workers and tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import inspect, text

from config.policy import load_policy
from config.settings import Settings
from letters.channels import Channel, FileChannel, SmtpChannel
from letters.delivery import Deliverer, RetryPolicy
from letters.digest import DigestRenderer
from letters.rendering import Templates
from letters.sweep import SweepTimings
from migrations import current_head
from workflow.clocks import Rulebook
from workflow.db import Database
from workflow.errors import CaseloopError
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
        return Deliverer(
            db=self.db,
            channels=self.channels,
            renderers={DIGEST_KIND: DigestRenderer(Templates(), self.book, self.settings.base_url)},
            retry=RetryPolicy(self.settings.max_attempts, self.settings.retry_base_seconds),
            clock=self.clock,
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
    channels: dict[str, Channel] = {"file": FileChannel(settings.outbox_dir, settings.mail_from)}
    if settings.smtp_url:
        channels["smtp"] = SmtpChannel(
            settings.smtp_url,
            sender=settings.mail_from,
            timeout=settings.smtp_timeout,
            verify_tls=settings.smtp_verify_tls,
        )
    return channels


def build_runtime(settings: Settings, clock: Clock = utc_now) -> Runtime:
    return Runtime(
        settings=settings,
        db=Database(settings.database_url),
        book=Rulebook.build(load_policy(settings), settings.zone),
        channels=build_channels(settings),
        clock=clock,
    )
