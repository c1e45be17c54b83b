"""Shared fixtures: real databases (a SQLite file and, when configured, a PostgreSQL schema).

PostgreSQL-backed tests need ``CASELOOP_TEST_POSTGRES_URL``. Locally they are skipped (and pytest
says so) when it is unset; under CI (``CI=true``) a missing service is an error, never a skip.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sqlite3
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

import migrations
from config.settings import Settings
from config.wiring import Runtime, build_runtime

TESTS = Path(__file__).resolve().parent

# Hundreds of tests each migrate a fresh SQLite file to the head revision, about a second each.
# The first in each test process is migrated by Alembic itself; the rest get a copy of it (its
# mode kept: owner-only, as caseloop makes it). Any other use (a revision, a database that exists,
# PostgreSQL) goes to Alembic as ever. Replaced here, before any test module imports it.
_alembic_upgrade = migrations.upgrade
_template: list[Path] = []


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    return Path(parsed.database) if parsed.get_backend_name() == "sqlite" and parsed.database else None


def _upgrade_from_template(url: str, revision: str = "head") -> None:
    path = _sqlite_file(url)
    if revision != "head" or path is None or path.exists():
        _alembic_upgrade(url, revision)
        return
    if not _template:
        folder = Path(tempfile.mkdtemp(prefix="caseloop-schema-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        made = folder / "head.db"
        _alembic_upgrade(f"sqlite:///{made}", "head")
        with sqlite3.connect(made) as conn:  # everything in the main file, none left in the WAL
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        _template.append(made)
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(_template[0], path)


migrations.upgrade = _upgrade_from_template
upgrade = _upgrade_from_template


def require(name: str, what: str, present: str | None) -> str:
    """``present``, or skip the test (locally) / fail it (under CI) because ``name`` is missing."""
    if present:
        return present
    if os.environ.get("CI") == "true":
        pytest.fail(f"{name} is not available: CI must run {what} tests against a real {what}")
    pytest.skip(f"{name} not available: skipping tests that need a real {what}")


def _service_url(variable: str, what: str) -> str:
    return require(variable, what, os.environ.get(variable))


@pytest.fixture(scope="session")
def postgres_url() -> str:
    return _service_url("CASELOOP_TEST_POSTGRES_URL", "PostgreSQL")


@pytest.fixture
def postgres_schema_url(postgres_url: str) -> Iterator[str]:
    """A fresh, empty schema for one test, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    url = make_url(postgres_url)
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs twice: on a SQLite file and on a PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'caseloop.db'}"
    return str(request.getfixturevalue("postgres_schema_url"))


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    """A migrated database with the shipped policy."""
    upgrade(settings.database_url)
    rt = build_runtime(settings)
    yield rt
    rt.close()


@pytest.fixture(autouse=True)
def outbox_moves_go_through_the_lifecycle() -> Iterator[list[str]]:
    """In every test: caseloop's own code changes an outbox status only through
    ``messaging.lifecycle`` (tests may set one by hand, to stage a worker that died)."""
    from sqlalchemy import event

    from messaging import lifecycle
    from messaging.outbox import OutboxMessage

    behind_its_back: list[str] = []

    def on_set(target: OutboxMessage, value: str, old: object, _initiator: object) -> None:
        if lifecycle.moving() or value == old:
            return
        frame = sys._getframe(1)
        while frame is not None and "sqlalchemy" in frame.f_code.co_filename:
            frame = frame.f_back  # type: ignore[assignment]
        where = frame.f_code.co_filename if frame is not None else "?"
        if not Path(where).resolve().is_relative_to(TESTS):
            behind_its_back.append(f"{where}:{frame.f_lineno if frame else '?'} set {old!r} -> {value!r}")

    event.listen(OutboxMessage.status, "set", on_set)
    try:
        yield behind_its_back
    finally:
        event.remove(OutboxMessage.status, "set", on_set)
    assert behind_its_back == [], "outbox statuses changed outside messaging.lifecycle"
