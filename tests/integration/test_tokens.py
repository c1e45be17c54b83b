"""API tokens: made once and shown once, only a hash kept, listed, revoked, recognised, and
marked as used at most once a minute."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from cli.main import app
from config.wiring import Runtime
from services import tokens
from services.actors import SYSTEM, Kind, Scope, client
from tests.factories import instant
from workflow.access import ApiToken
from workflow.errors import Conflict, Forbidden, Invalid, NotFound

NOW = instant("2026-11-30T09:00:00+00:00")


def cli(rt: Runtime, *args: str) -> Any:
    env = {"CASELOOP_DATABASE_URL": rt.settings.database_url}
    return CliRunner().invoke(app, ["--now", NOW.isoformat(), *args], env=env)


def stored(rt: Runtime) -> list[ApiToken]:
    with rt.db.transaction() as session:
        rows = list(session.scalars(select(ApiToken).order_by(ApiToken.name)))
        session.expunge_all()
    return rows


def test_create_prints_the_token_once_on_its_last_line_and_keeps_only_its_hash(runtime: Runtime) -> None:
    made = cli(
        runtime,
        "tokens",
        "create",
        "case-system",
        "--scope",
        "events:write",
        "--scope",
        "cases:read",
        "--team",
        "front-door",
    )
    assert made.exit_code == 0, made.output
    token = made.stdout.splitlines()[-1]
    assert token.startswith("cl_") and len(token) >= 40 and " " not in token
    assert made.stdout.count(token) == 1
    (row,) = stored(runtime)
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in repr(vars(row)) and token.startswith(row.prefix) and len(row.prefix) < 12
    assert (row.scopes, row.teams) == (["events:write", "cases:read"], ["front-door"])

    listed = cli(runtime, "tokens", "list")
    assert listed.exit_code == 0 and token not in listed.stdout
    header, line = listed.stdout.splitlines()
    assert header.split() == ["name", "prefix", "scopes", "teams", "created", "last_used", "revoked"]
    assert line.split() == [
        "case-system",
        row.prefix,
        "events:write,cases:read",
        "front-door",
        "2026-11-30T09:00:00+00:00",
        "-",
        "-",
    ]

    actor = tokens.caller(runtime, token, NOW)
    assert actor == client("case-system", {Scope.EVENTS_WRITE, Scope.CASES_READ}, {"front-door"})
    assert actor is not None and actor.kind is Kind.CLIENT


def test_an_unknown_scope_a_bad_name_and_a_taken_name_are_refused_clearly(runtime: Runtime) -> None:
    bad = cli(runtime, "tokens", "create", "crm", "--scope", "cases:write")
    assert bad.exit_code == 2
    assert bad.stderr == (
        "error: unknown scope 'cases:write': the scopes are events:write, cases:read, outbox:read\n"
    )
    with pytest.raises(Invalid, match="needs at least one scope"):
        tokens.create(runtime, SYSTEM, "crm", [])
    with pytest.raises(Invalid, match="token name 'a b'"):
        tokens.create(runtime, SYSTEM, "a b", ["cases:read"])
    tokens.create(runtime, SYSTEM, "crm", ["cases:read"])
    with pytest.raises(Conflict, match="a token named 'crm' exists already"):
        tokens.create(runtime, SYSTEM, "crm", ["cases:read"])
    assert [t.name for t in stored(runtime)] == ["crm"]


def test_a_revoked_token_is_refused_at_once_and_stays_listed(runtime: Runtime) -> None:
    made = tokens.create(runtime, SYSTEM, "crm", ["outbox:read"], now=NOW)
    assert tokens.caller(runtime, made.token, NOW) is not None
    done = cli(runtime, "tokens", "revoke", "crm")
    assert (done.exit_code, done.stdout) == (0, "token crm revoked\n")
    assert tokens.caller(runtime, made.token, NOW) is None
    again = cli(runtime, "tokens", "revoke", "crm")
    assert again.exit_code == 2 and "was revoked already" in again.stderr
    with pytest.raises(NotFound, match="no token named 'nope'"):
        tokens.revoke(runtime, SYSTEM, "nope")
    (view,) = tokens.list_tokens(runtime, SYSTEM)
    assert view.revoked == NOW


def test_tokens_that_were_never_made_are_not_recognised(runtime: Runtime) -> None:
    made = tokens.create(runtime, SYSTEM, "crm", ["cases:read"], now=NOW)
    for presented in (
        "",
        made.token[:-1],
        made.token + "x",
        made.token.upper(),
        made.view.prefix,
        "cl_" + "x" * 500,
        made.token[3:],
    ):
        assert tokens.caller(runtime, presented, NOW) is None


def test_last_used_is_written_at_most_once_a_minute(runtime: Runtime) -> None:
    made = tokens.create(runtime, SYSTEM, "crm", ["cases:read"], now=NOW)

    def last_used() -> object:
        (row,) = stored(runtime)
        return row.last_used_at

    assert last_used() is None
    tokens.caller(runtime, made.token, NOW)
    assert last_used() == NOW
    tokens.caller(runtime, made.token, NOW + timedelta(seconds=59))
    assert last_used() == NOW  # no write for every request
    tokens.caller(runtime, made.token, NOW + timedelta(seconds=61))
    assert last_used() == NOW + timedelta(seconds=61)


def test_only_caseloop_itself_manages_tokens(runtime: Runtime) -> None:
    other = client("crm", {Scope.EVENTS_WRITE, Scope.CASES_READ, Scope.OUTBOX_READ})
    with pytest.raises(Forbidden, match="may not make, list or revoke API tokens"):
        tokens.create(runtime, other, "mine", ["cases:read"])
    with pytest.raises(Forbidden):
        tokens.list_tokens(runtime, other)
