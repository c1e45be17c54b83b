"""What every use case needs: the database, the rulebook, the channels and the clock.

Built once per process by the composition point (:mod:`config.wiring`). Renderers and template
environments are built on first use and kept for the life of the process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property

from config.council import load_council
from config.settings import Settings
from letters.catalogue import Catalogue
from letters.council import Council
from letters.letters_renderer import LetterRenderer
from letters.rendering import Templates
from messaging.channels import Channel
from messaging.compose import LetterComposer
from messaging.digest import DigestRenderer
from messaging.relay import Deliverer, Renderer, RetryPolicy
from services.unit_of_work import UnitOfWork
from workflow.clocks import Rulebook
from workflow.db import Database
from workflow.reminders import DIGEST_KIND
from workflow.timeutil import Clock, utc_now


@dataclass(frozen=True)
class SweepTimings:
    sending_timeout: timedelta
    redispatch_after: timedelta


def _no_workers_to_wake() -> None:
    """The default: the next sweep hands out what became due (within a minute)."""


@dataclass
class Runtime:
    settings: Settings
    db: Database
    book: Rulebook
    channels: dict[str, Channel]
    clock: Clock = field(default=utc_now)
    # Called after a use case has committed messages that are due now, so the workers hand them
    # out at once; the composition point sets it for the processes that serve requests.
    wake: Callable[[], None] = field(default=_no_workers_to_wake)

    @contextmanager
    def writing(self) -> Iterator[UnitOfWork]:
        """A unit of work that may write: committed by ``uow.commit()``, else rolled back."""
        with UnitOfWork.writing(self.db) as uow:
            yield uow

    @contextmanager
    def reading(self) -> Iterator[UnitOfWork]:
        """A unit of work that only reads (on SQLite it never takes the write lock)."""
        with UnitOfWork.reading(self.db) as uow:
            yield uow

    @cached_property
    def catalogue(self) -> Catalogue:
        return Catalogue().load()

    @cached_property
    def council(self) -> Council:
        """The council's details: printed on every letter, named in every page's header."""
        return load_council(self.settings.council_file)

    @cached_property
    def letters(self) -> LetterRenderer:
        settings = self.settings
        return LetterRenderer(self.catalogue, self.council, self.book, settings.pdf_cache_dir, self.clock)

    @cached_property
    def renderers(self) -> dict[str, Renderer]:
        composer = LetterComposer(self.letters)
        renderers: dict[str, Renderer] = dict.fromkeys(self.catalogue.keys(), composer)
        renderers[DIGEST_KIND] = DigestRenderer(Templates(), self.book, self.settings.base_url, self.clock)
        return renderers

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

    @cached_property
    def _deliverer(self) -> Deliverer:
        return Deliverer(
            db=self.db,
            channels=self.channels,
            renderers=self.renderers,
            retry=RetryPolicy(self.settings.max_attempts, self.settings.retry_base_seconds),
            clock=self.clock,
            routes={**self.book.letter_channels, "staff": self.staff_channel},
        )

    def deliverer(self) -> Deliverer:
        """The process's deliverer (its renderers and templates are built once)."""
        return self._deliverer

    def close(self) -> None:
        self.db.dispose()
