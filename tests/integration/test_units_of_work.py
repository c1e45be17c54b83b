"""Units of work (services/unit_of_work.py), on SQLite and PostgreSQL.

A reading unit of work cannot write and, on SQLite, never takes the write lock; a writing one
that is not committed leaves nothing behind; and the read-only CLI commands change nothing.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import func, inspect, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from cli.main import app
from config.wiring import Runtime
from messaging.outbox import OutboxAudit, OutboxMessage
from services import queries
from services.actors import SYSTEM
from services.unit_of_work import NotCommitted
from tests.factories import (
    MovableClock,
    event,
    import_events,
    import_staff,
    jsonl,
    letter_runtime,
    letters_of,
    person,
    referral,
)
from workflow import intake
from workflow.intake import ImportReport
from workflow.model import Case, ClockRow, HistoryEntry, ReceivedEvent

NOW = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)  # Tuesday, office hours
LATER = NOW + timedelta(days=14)  # every clock of C1 is overdue by then
DEADLINE = 20.0  # seconds to wait for a condition (the busy timeout, 30 s, is longer)


@pytest.fixture
def rt(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    runtime = letter_runtime(database_url, tmp_path / "var", MovableClock(NOW))
    yield runtime
    runtime.close()


@pytest.fixture
def sqlite_rt(tmp_path: Path) -> Iterator[Runtime]:
    """For SQLite's write lock: a runtime on a SQLite file whatever ``database_url`` is."""
    runtime = letter_runtime(f"sqlite:///{tmp_path / 'locks.db'}", tmp_path / "var", MovableClock(NOW))
    yield runtime
    runtime.close()


def sqlite_path(rt: Runtime) -> str:
    database = make_url(rt.db.url).database
    assert rt.db.dialect == "sqlite" and database
    return database


def a_case(rt: Runtime) -> None:
    """C1: referred, allocated to W1 and decided, with letters in the outbox."""
    import_staff(rt)
    report = import_events(
        rt,
        referral("C1", "2026-11-03T08:00:00+00:00", id="C1-ref", household=[person("P1")]),
        event("worker.allocated", "C1", "2026-11-03T08:05:00+00:00", id="C1-w", worker="W1"),
        event("decision.made", "C1", "2026-11-03T08:10:00+00:00", id="C1-dec", outcome="assessment"),
        now=NOW.isoformat(),
    )
    assert report.ok, report.rejected


def counts(rt: Runtime) -> dict[str, int]:
    with rt.reading() as uow:
        return {
            model.__tablename__: int(uow.session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Case, ReceivedEvent, HistoryEntry, ClockRow, OutboxMessage, OutboxAudit)
        }


def checksum(rt: Runtime) -> str:
    """A digest of every row of every table (each table's rows sorted, so order does not matter)."""
    digest = hashlib.sha256()
    with rt.db.engine.connect() as conn:
        for table in sorted(inspect(conn).get_table_names()):
            rows = conn.execute(text(f'SELECT * FROM "{table}"')).all()
            digest.update(table.encode())
            for row in sorted(repr(tuple(r)) for r in rows):
                digest.update(row.encode())
        conn.rollback()
    return digest.hexdigest()


class WriteLock:
    """Another connection holding SQLite's write lock (``BEGIN IMMEDIATE``) until released."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, timeout=DEADLINE)

    def __enter__(self) -> WriteLock:
        self.conn.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.execute("ROLLBACK")
        self.conn.close()


def in_thread(work: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Run ``work`` in a thread; its result (or error) lands in the dict returned."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = work()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


# -- reading -----------------------------------------------------------------------------------


def test_a_reading_unit_of_work_cannot_write(rt: Runtime) -> None:
    a_case(rt)
    before = checksum(rt)
    writes: list[Callable[[Any], object]] = [
        lambda s: s.execute(update(Case).values(state="closed")),
        lambda s: s.execute(text("DELETE FROM outbox_audit")),
        lambda s: (
            s.add(ReceivedEvent(raw="{}", status="rejected", source="t", line_no=1, received_at=NOW)),
            s.flush(),
        ),
    ]
    for write in writes:
        with rt.reading() as uow, pytest.raises(DBAPIError) as refused:
            write(uow.session)
        assert "read" in str(refused.value.orig).lower(), refused.value.orig  # read-only, by the database
    with rt.reading() as uow, pytest.raises(NotCommitted):
        uow.commit()
    assert checksum(rt) == before


def test_a_reading_unit_of_work_never_takes_sqlites_write_lock(sqlite_rt: Runtime) -> None:
    rt = sqlite_rt
    path = sqlite_path(rt)
    a_case(rt)

    def read_everything() -> tuple[str, str, int, int]:
        with rt.reading() as uow:
            state = str(uow.session.scalar(select(Case.state).where(Case.ref == "C1")))
        view = queries.case(rt, SYSTEM, "C1", LATER)
        overdue = queries.overdue(rt, SYSTEM, None, LATER)
        return state, view["state"], len(overdue), len(queries.outbox(rt, SYSTEM))

    def write() -> None:
        with rt.writing() as uow:
            uow.session.execute(update(Case).values(worker="W2"))
            uow.commit()

    letters = len(letters_of(rt, "C1"))
    with WriteLock(path):
        writer, written = in_thread(write)
        reader, read = in_thread(read_everything)
        reader.join(DEADLINE)
        assert not reader.is_alive(), "a reading unit of work waited for the write lock"
        assert "error" not in read, read.get("error")
        state, shown, overdue, messages = read["result"]
        assert (state, shown) == ("assessment", "assessment")
        assert overdue > 0 and messages == letters
        assert writer.is_alive()  # a writing one does wait: the lock is really held
    writer.join(DEADLINE)
    assert not writer.is_alive() and "error" not in written, written.get("error")


# -- writing -----------------------------------------------------------------------------------


def test_a_writing_unit_of_work_not_committed_leaves_nothing(rt: Runtime) -> None:
    import_staff(rt)
    empty = counts(rt)
    before = checksum(rt)
    lines = list(enumerate(jsonl(referral("C1", "2026-11-03T08:00:00+00:00", id="C1-ref")), start=1))
    with rt.writing() as uow:
        intake.import_lines(uow.session, rt.book, lines, "t.jsonl", NOW, ImportReport())
        uow.session.flush()
        # Inside, the referral is there and its acknowledgement is queued in the outbox...
        assert uow.session.scalar(select(func.count()).select_from(OutboxMessage)) == 1
        assert uow.session.scalar(select(Case.state).where(Case.ref == "C1")) == "referral"
    # ...and, never committed, none of it is.
    assert counts(rt) == empty
    assert checksum(rt) == before

    class Boom(Exception):
        pass

    with pytest.raises(Boom), rt.writing() as uow:
        intake.import_lines(uow.session, rt.book, lines, "t.jsonl", NOW, ImportReport())
        raise Boom
    assert counts(rt) == empty

    with rt.writing() as uow:
        intake.import_lines(uow.session, rt.book, lines, "t.jsonl", NOW, ImportReport())
        uow.commit()
        with pytest.raises(NotCommitted):
            uow.commit()
    assert counts(rt)["outbox"] == 1 and counts(rt)["cases"] == 1


# -- the read-only CLI commands ----------------------------------------------------------------


class Cli:
    def __init__(self, rt: Runtime, tmp_path: Path) -> None:
        self.env = {
            "CASELOOP_DATABASE_URL": rt.db.url,
            "CASELOOP_VAR_DIR": str(tmp_path / "var"),
            "COLUMNS": "200",
        }
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Result:
        result = self.runner.invoke(app, ["--now", LATER.isoformat(), *args], env=self.env)
        assert result.exit_code == 0, (args, result.output)
        return result


def read_only_commands(rt: Runtime) -> list[list[str]]:
    # Not `outbox show`: every view of a letter records who saw it (an audit row, issue 9), so it
    # writes; tests/integration/test_access.py checks that it writes that row and nothing else.
    return [
        ["case", "show", "C1"],
        ["case", "show", "C1", "--json", "--as", "W1"],
        ["queue", "overdue"],
        ["queue", "overdue", "--json", "--as", "TM1"],
        ["outbox", "list"],
        ["outbox", "list", "--json", "--case", "C1", "--as", "W1"],
    ]


def test_read_only_cli_commands_change_nothing(rt: Runtime, tmp_path: Path) -> None:
    a_case(rt)
    cli = Cli(rt, tmp_path)
    commands = read_only_commands(rt)
    before = checksum(rt)
    watcher = None
    if rt.db.dialect == "sqlite":
        # data_version changes when any other connection commits to the file.
        watcher = sqlite3.connect(sqlite_path(rt), isolation_level=None)
        version = watcher.execute("PRAGMA data_version").fetchone()
    outputs = [cli(*args).stdout for args in commands]
    assert "C1" in outputs[0] and '"case": "C1"' in outputs[1]
    assert all(outputs), outputs
    assert checksum(rt) == before
    if watcher is not None:
        assert watcher.execute("PRAGMA data_version").fetchone() == version
        watcher.close()


def test_read_only_cli_commands_do_not_wait_for_sqlites_write_lock(
    sqlite_rt: Runtime, tmp_path: Path
) -> None:
    rt = sqlite_rt
    path = sqlite_path(rt)
    a_case(rt)
    cli = Cli(rt, tmp_path)
    commands = read_only_commands(rt)
    with WriteLock(path):
        for args in commands:
            thread, outcome = in_thread(lambda args=args: cli(*args))  # type: ignore[misc]
            thread.join(DEADLINE)
            assert not thread.is_alive(), f"`caseloop {' '.join(args)}` waited for the write lock"
            assert "error" not in outcome, outcome.get("error")


def test_postgresql_connections_do_not_jit_compile_caseloops_short_queries(rt: Runtime) -> None:
    if rt.db.dialect != "postgresql":
        pytest.skip("a PostgreSQL setting")
    with rt.reading() as uow:
        assert uow.session.execute(text("SHOW jit")).scalar() == "off"
    with rt.db.transaction() as session:
        assert session.execute(text("SHOW jit")).scalar() == "off"
