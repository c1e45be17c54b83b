"""People and who sees what, on SQLite and PostgreSQL: ``caseloop users``, restricted cases, a
service manager's teams from the staff directory, admin-only logins, and the audit of views.

Staff: SM1 (front-door) over TM1 (front-door) over W1 and W2; SM9 (east) over TM9 (east, and
TM8 of north) over X1. Cases: C1 front-door, C2 east, C3 north, R1 front-door restricted; all
unallocated except R1 (W1).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import select
from typer.testing import CliRunner

from cli.main import app
from config.wiring import Runtime
from services import access, queries
from services.actors import SYSTEM, Actor, Scope, client
from services.authorisation import may_see, visible_cases
from services.letters import show_message
from services.people import identify
from tests.factories import (
    MovableClock,
    audit_of,
    event,
    front_door_staff,
    import_events,
    import_staff,
    letter_runtime,
    letters_of,
    person,
    referral,
    staff_row,
)
from workflow.access import User
from workflow.errors import CaseloopError, Conflict, Forbidden, Invalid, NotFound
from workflow.model import Case

NOW = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
PASSWORD = "a long enough password"

SEES: dict[str, set[str]] = {
    "W1": {"R1"},  # only what is allocated to them (R1); the unallocated C1 is the manager's
    "W2": set(),
    "TM1": {"C1", "R1"},
    "SM1": {"C1", "R1"},
    "X1": set(),
    "TM9": {"C2"},
    "TM8": {"C3"},
    "SM9": {"C2", "C3"},  # their own team, and north, whose team manager reports to them
}
CLIENTS: dict[str, tuple[Actor, set[str]]] = {
    "cms": (client("cms", {Scope.CASES_READ, Scope.OUTBOX_READ}), {"C1", "C2", "C3"}),  # never R1
    "front-app": (client("front-app", {Scope.CASES_READ, Scope.OUTBOX_READ}, {"front-door"}), {"C1"}),
    "caseloop": (SYSTEM, {"C1", "C2", "C3", "R1"}),
}


@pytest.fixture
def rt(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    runtime = letter_runtime(database_url, tmp_path / "var", MovableClock(NOW), password_hashing="fast")
    import_staff(
        runtime,
        *front_door_staff(),
        staff_row("SM9", "service_manager", team="east"),
        staff_row("TM9", "team_manager", team="east", manager="SM9"),
        staff_row("TM8", "team_manager", team="north", manager="SM9"),
        staff_row("X1", team="east", manager="TM9"),
    )
    at = "2026-11-03T08:00:00+00:00"
    report = import_events(
        runtime,
        referral("C1", at, team="front-door", household=[person("P1")]),
        referral("C2", at, team="east", household=[person("P1")]),
        referral("C3", at, team="north", household=[person("P1")]),
        referral("R1", at, team="front-door", flags=["restricted"], household=[person("P1")]),
        event("worker.allocated", "R1", "2026-11-03T08:05:00+00:00", worker="W1"),
        now=NOW.isoformat(),
    )
    assert report.ok, report.rejected
    yield runtime
    runtime.close()


def actors(rt: Runtime) -> dict[str, tuple[Actor, set[str]]]:
    return {**{sid: (identify(rt, sid), cases) for sid, cases in SEES.items()}, **CLIENTS}


def answer(call: Any) -> tuple[type[Exception], str]:
    with pytest.raises(CaseloopError) as raised:
        call()
    return type(raised.value), str(raised.value)


# -- who sees what -----------------------------------------------------------------------------


def test_one_rule_for_single_cases_and_for_lists(rt: Runtime) -> None:
    assert identify(rt, "SM9").teams == {"east", "north"}
    with rt.reading() as uow:
        cases = {c.ref: c for c in uow.session.scalars(select(Case))}
        for name, (actor, expected) in actors(rt).items():
            assert (name, {r for r, c in cases.items() if may_see(actor, c)}) == (name, expected)
            listed = set(uow.session.scalars(select(Case.ref).where(visible_cases(actor))))
            assert (name, listed) == (name, expected)


def test_reads_and_lists_obey_it_and_the_unseen_is_not_found(rt: Runtime) -> None:
    for name, (actor, expected) in actors(rt).items():
        for ref in ("C1", "C2", "C3", "R1"):
            if ref in expected:
                assert queries.case(rt, actor, ref, NOW)["case"] == ref
            else:
                assert answer(lambda a=actor, r=ref: queries.case(rt, a, r, NOW)) == (
                    NotFound,
                    f"no case {ref!r}",
                ), name
        assert {r["case"] for r in queries.outbox(rt, actor) if r["case"]} == expected, name
        restricted_letters = [m.id for m in letters_of(rt, "R1")]
        assert restricted_letters
        for oid in restricted_letters:
            if "R1" not in expected:
                assert answer(lambda a=actor, o=oid: show_message(rt, a, o, "text")) == (
                    NotFound,
                    f"no outbox message {oid}",
                ), name


def test_an_admin_only_login_manages_logins_and_reads_no_case(rt: Runtime) -> None:
    access.add_user(rt, SYSTEM, "SM9", PASSWORD, admin=True, reads_cases=False)
    new = access.log_in(rt, "SM9", PASSWORD, "127.0.0.1")
    admin = new.actor
    assert (admin.id, admin.role, admin.team, admin.admin) == ("SM9", None, None, True)
    assert admin.teams == frozenset()
    for call in (
        lambda: queries.case(rt, admin, "C2", NOW),
        lambda: queries.outbox(rt, admin),
        lambda: queries.overdue(rt, admin, None, NOW),
    ):
        kind, message = answer(call)
        assert kind is Forbidden and message.startswith("SM9 is an admin-only login: it may not "), message
    with rt.reading() as uow:
        assert uow.session.scalar(select(Case.ref).where(visible_cases(admin))) is None
    # It may make a login; a member of staff who is not an admin may not.
    access.add_user(rt, admin, "X1", PASSWORD)
    assert answer(lambda: access.add_user(rt, identify(rt, "TM1"), "W2", PASSWORD)) == (
        Forbidden,
        "TM1 may not manage logins",
    )
    # An admin who is also staff keeps their case role.
    access.add_user(rt, SYSTEM, "TM1", PASSWORD, admin=True)
    both = access.log_in(rt, "TM1", PASSWORD, "127.0.0.1").actor
    assert (both.role, both.admin) == (identify(rt, "TM1").role, True)
    assert queries.case(rt, both, "C1", NOW)["case"] == "C1"


def test_every_view_of_a_letter_is_audited_with_who(rt: Runtime) -> None:
    [letter, *_] = letters_of(rt, "C1")
    before = audit_of(rt, letter.id)
    show_message(rt, identify(rt, "SM1"), letter.id, "text")
    show_message(rt, identify(rt, "TM1"), letter.id, "html")
    assert audit_of(rt, letter.id) == [*before, ("viewed", "SM1", "as text"), ("viewed", "TM1", "as html")]
    # A refused view records nothing (W2 is on the team, but C1 is not allocated to them).
    answer(lambda: show_message(rt, identify(rt, "W2"), letter.id, "text"))
    assert len(audit_of(rt, letter.id)) == len(before) + 2


# -- caseloop users ----------------------------------------------------------------------------


class Cli:
    def __init__(self, rt: Runtime, tmp_path: Path) -> None:
        self.env = {
            "CASELOOP_DATABASE_URL": rt.db.url,
            "CASELOOP_VAR_DIR": str(tmp_path / "var"),
            "CASELOOP_PASSWORD_HASHING": "fast",
            "COLUMNS": "200",
        }
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None) -> Result:
        return self.runner.invoke(app, ["--now", NOW.isoformat(), *args], env=self.env, input=input)


def user(rt: Runtime, staff_id: str) -> User | None:
    with rt.reading() as uow:
        found = uow.session.get(User, staff_id)
        if found is not None:
            uow.session.expunge(found)
        return found


def test_users_add_reads_the_password_from_a_pipe_and_takes_role_and_team_from_the_staff_list(
    rt: Runtime, tmp_path: Path
) -> None:
    cli = Cli(rt, tmp_path)
    added = cli("users", "add", "TM1", input=f"{PASSWORD}\n")
    assert (added.exit_code, added.stdout) == (0, "added: TM1 (team_manager in front-door)\n")
    assert PASSWORD not in added.output
    stored = user(rt, "TM1")
    assert stored is not None and stored.password_hash.startswith("$argon2id$")
    assert PASSWORD not in stored.password_hash and not stored.is_admin
    assert access.log_in(rt, "TM1", PASSWORD, "127.0.0.1").actor == identify(rt, "TM1")
    admin = cli("users", "add", "SM1", "--admin", "--no-cases", input=f"{PASSWORD}\n")
    assert (admin.exit_code, admin.stdout) == (0, "added: SM1 (admin-only login)\n")
    # No option takes a password: it never shows in a process list or shell history.
    assert "--password" not in cli("users", "add", "--help").stdout


@pytest.mark.parametrize(
    ("args", "typed", "error"),
    [
        (["W1"], "short\n", "error: a password needs at least 12 characters\n"),
        (["NOBODY"], f"{PASSWORD}\n", "error: no member of staff 'NOBODY': import the staff list first\n"),
        (
            ["W1", "--no-cases"],
            f"{PASSWORD}\n",
            "error: a login that reads no case must be an admin (--admin), or it can do nothing\n",
        ),
    ],
)
def test_users_add_refuses_with_a_clear_reason(
    rt: Runtime, tmp_path: Path, args: list[str], typed: str, error: str
) -> None:
    refused = Cli(rt, tmp_path)("users", "add", *args, input=typed)
    assert (refused.exit_code, refused.stderr) == (2, error)
    assert user(rt, args[0]) is None


def test_a_leaver_gets_no_login_and_a_login_is_made_once(rt: Runtime, tmp_path: Path) -> None:
    cli = Cli(rt, tmp_path)
    assert cli("staff", "leave", "W2").exit_code == 0
    refused = cli("users", "add", "W2", input=f"{PASSWORD}\n")
    assert (refused.exit_code, refused.stderr) == (2, "error: W2 has left: a leaver cannot have a login\n")
    assert cli("users", "add", "W1", input=f"{PASSWORD}\n").exit_code == 0
    again = cli("users", "add", "W1", input=f"{PASSWORD}\n")
    assert (again.exit_code, again.stderr) == (
        2,
        "error: W1 has a login already (`caseloop users disable W1` first)\n",
    )


def test_users_disable_ends_sessions_and_add_enables_again(rt: Runtime, tmp_path: Path) -> None:
    cli = Cli(rt, tmp_path)
    assert cli("users", "add", "W1", input=f"{PASSWORD}\n").exit_code == 0
    session = access.log_in(rt, "W1", PASSWORD, "127.0.0.1")
    assert access.signed_in(rt, session.cookie_value) is not None
    disabled = cli("users", "disable", "W1")
    assert (disabled.exit_code, disabled.stdout) == (0, "disabled: W1 (1 session ended)\n")
    assert access.signed_in(rt, session.cookie_value) is None
    with pytest.raises(access.LoginRefused):
        access.log_in(rt, "W1", PASSWORD, "127.0.0.1")
    twice = cli("users", "disable", "W1")
    assert (twice.exit_code, twice.stderr) == (2, "error: the login of W1 was disabled already\n")
    new_password = "another long password"
    assert cli("users", "add", "W1", input=f"{new_password}\n").stdout == (
        "enabled again: W1 (social_worker in front-door)\n"
    )
    assert access.log_in(rt, "W1", new_password, "127.0.0.1").actor.id == "W1"
    assert cli("users", "disable", "NOBODY").stderr == "error: NOBODY has no login\n"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_at_a_terminal_the_password_is_asked_twice() -> None:
    from cli.users_cli import read_password

    typed = iter([PASSWORD, "a different password"])
    with pytest.raises(Invalid, match="the two passwords differ: nothing was changed"):
        read_password(Terminal(), lambda prompt: next(typed))
    prompts: list[str] = []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return PASSWORD

    assert read_password(Terminal(), ask) == PASSWORD
    assert prompts == ["Password: ", "The same password again: "]
    assert read_password(io.StringIO(f"{PASSWORD}\r\n")) == PASSWORD  # a pipe: one line, read once


def test_a_conflict_is_typed(rt: Runtime) -> None:
    access.add_user(rt, SYSTEM, "W1", PASSWORD)
    assert answer(lambda: access.add_user(rt, SYSTEM, "W1", PASSWORD))[0] is Conflict
