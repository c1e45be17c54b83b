"""The unit of work: one transaction per use case, committed once, rolled back unless committed.

A reading unit of work can never write (the database refuses it) and, on SQLite, never takes
the write lock, so a page or a report never waits behind an import.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from workflow.db import Database
from workflow.errors import CaseloopError


class NotCommitted(CaseloopError):
    """A reading unit of work was asked to commit, or a unit of work to commit twice."""


@dataclass
class UnitOfWork:
    session: Session
    read_only: bool
    committed: bool = field(default=False)

    def commit(self) -> None:
        if self.read_only:
            raise NotCommitted("a reading unit of work has nothing to commit")
        if self.committed:
            raise NotCommitted("this unit of work was committed already")
        self.session.commit()
        self.committed = True

    @classmethod
    @contextmanager
    def writing(cls, db: Database) -> Iterator[UnitOfWork]:
        session = db.session()
        try:
            session.begin()
            yield cls(session, read_only=False)
        finally:
            session.rollback()  # nothing, after a commit; everything, otherwise
            session.close()

    @classmethod
    @contextmanager
    def reading(cls, db: Database) -> Iterator[UnitOfWork]:
        with db.reading() as session:
            yield cls(session, read_only=True)
