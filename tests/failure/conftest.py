"""Fixtures for the failure suite: the process tests' own (Redis, SMTP sink, engines), and a
PostgreSQL schema whose connections carry an ``application_name`` of their own, so a test can
terminate exactly its deployment's connections and no one else's."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.e2e.conftest import make_engine, private_redis, redis_db_url, redis_url, smtp_sink

__all__ = ["make_engine", "private_redis", "redis_db_url", "redis_url", "smtp_sink"]


@pytest.fixture
def tagged_schema(postgres_url: str) -> Iterator[tuple[str, str]]:
    """A fresh schema and the URL of it whose connections are named ``application_name``; yields
    ``(url, application_name)``. Dropped afterwards."""
    schema = f"f_{uuid.uuid4().hex[:12]}"
    url = make_url(postgres_url)
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    name = f"caseloop-{schema}"
    scoped = url.update_query_dict({"options": f"-csearch_path={schema}", "application_name": name})
    try:
        yield scoped.render_as_string(hide_password=False), name
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", (name,)
            )
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
