"""The database: engine set-up for SQLite and PostgreSQL, the UTC column type, and transactions.

SQLite is the embedded default. It has no row locks (SQLAlchemy drops ``FOR UPDATE`` there), so
every writing transaction starts with ``BEGIN IMMEDIATE``, taking the write lock up front, with WAL
and a busy timeout so readers are not blocked and writers queue instead of failing. A reading
transaction (:meth:`Database.reading`) starts with a plain ``BEGIN`` and ``query_only``, so it
never takes the write lock and cannot write; on PostgreSQL it is ``READ ONLY``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, create_engine, event, text
from sqlalchemy.engine import Dialect, ExceptionContext, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from workflow.private_files import create_private, private_dir

SQLITE_BUSY_TIMEOUT_MS = 30_000
READ_ONLY = "caseloop_read_only"  # the execution option that marks a reading transaction


class UTCDateTime(TypeDecorator[datetime]):
    """An instant: stored as UTC (naive on SQLite, which drops zones), always read back aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("refusing to store a naive datetime; give it a UTC offset")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` with caseloop's connection rules applied.

    Errors never quote the values of a statement (``hide_parameters``): they are a child's name,
    an address, and error text ends up in logs and on terminals.
    """
    parsed = make_url(url)
    kwargs.setdefault("hide_parameters", True)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            database = Path(parsed.database)
            private_dir(database.parent)
            # SQLite creates its -wal and -shm files with the database file's mode.
            create_private(database)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs)
        _sqlite_rules(engine)
        return engine
    engine = create_engine(url, pool_pre_ping=True, **kwargs)
    if parsed.get_backend_name() == "postgresql":
        _postgres_rules(engine)
    return engine


def _sqlite_rules(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("PRAGMA query_only = ON")
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("PRAGMA query_only = OFF")
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def _postgres_rules(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # caseloop's statements are short and answered from indexes; PostgreSQL's JIT compiler
        # only pays on long scans, and a row estimate that is too high (as for the open loops'
        # "no letter yet" part) makes it spend 100 ms or more compiling a query that then runs
        # in a few. Set per connection, not in the URL, so a pooler in front still accepts it.
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET jit = off")
        dbapi_connection.commit()

    @event.listens_for(engine, "handle_error")
    def _without_row_values(context: ExceptionContext) -> None:
        # PostgreSQL's DETAIL line quotes the row ("Key (email)=(…) already exists", "Failing
        # row contains (…)"). The error keeps it in ``orig.diag`` for code that needs it; its
        # text, which is what gets printed and logged, keeps only the primary message.
        original = context.original_exception
        diag = getattr(original, "diag", None)
        primary = getattr(diag, "message_primary", None)
        wrapped = context.sqlalchemy_exception
        if not primary or not getattr(diag, "message_detail", None) or wrapped is None:
            return
        original.args = (primary,)
        name = f"{type(original).__module__}.{type(original).__name__}"
        wrapped.args = (f"({name}) {primary}", *wrapped.args[1:])

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")


_ASYNCHRONOUS_COMMIT = text("SET LOCAL synchronous_commit TO OFF")


def commit_without_waiting(session: Session) -> None:
    """Let the session's current transaction commit without waiting for the disk, as
    ``Database.transaction(durable=False)`` does (for a unit of work that began its own)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_ASYNCHRONOUS_COMMIT)


class Database:
    """An engine and its sessions: ``transaction()`` writes (commit or roll back), ``reading()``
    only reads. ``session_info`` is given to every session (the bus's handlers, see
    :mod:`workflow.bus`)."""

    def __init__(self, url: str, *, session_info: dict[str, Any] | None = None, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.session_info: dict[str, Any] = session_info if session_info is not None else {}
        self._sessions = sessionmaker(self.engine, expire_on_commit=False, info=self.session_info)
        self._readers = sessionmaker(
            self.engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False, info=self.session_info
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises.

        ``durable=False`` is for a commit that must outlive this process but need not outlive a
        crash of the database server itself: on PostgreSQL the commit returns before its record
        is on disk (asynchronous commit; the server writes it within a fraction of a second). A
        server crash in that moment loses the whole transaction, never part of it, and any later
        durable commit, of any transaction, writes it to disk first.
        """
        with self._sessions() as session, session.begin():
            if not durable:
                commit_without_waiting(session)
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A transaction that only reads: never writes, and on SQLite never takes the write lock.
        Closing the session ends it (there is nothing to commit); rows read stay readable."""
        with self._readers() as session:
            yield session

    def session(self) -> Session:
        """A session whose transactions the caller manages (for batched imports)."""
        return self._sessions()

    def dispose(self) -> None:
        self.engine.dispose()
