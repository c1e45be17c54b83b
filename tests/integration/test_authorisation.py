"""Who may see what (services/authorisation.py), through every read and write service and the
CLI, on SQLite and PostgreSQL.

A member of staff sees the cases allocated to them and those of their team, a service manager
those of the teams they manage (restricted cases and admin-only logins: test_access.py); a
system with an API token what its scopes and teams allow; caseloop itself everything. A case
an actor may not see gets, word for word, the answer given for a case that does not exist.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import select
from typer.testing import CliRunner

from cli.main import app
from config.wiring import Runtime
from services import intake, queries
from services.actors import SYSTEM, Actor, Kind, Scope, client
from services.authorisation import may_see, visible_cases
from services.casework import record_duty_done
from services.letters import approve_letter, preview_template, reject_letter, show_message
from services.people import identify
from tests.factories import (
    MovableClock,
    event,
    front_door_staff,
    import_events,
    import_staff,
    jsonl,
    letter_runtime,
    letters_of,
    person,
    referral,
    staff_row,
)
from workflow.errors import CaseloopError, Conflict, Forbidden, Invalid, NotFound
from workflow.model import Case

NOW = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)  # Tuesday, office hours
LATER = NOW + timedelta(days=14)  # every clock is overdue by then
MISSING_CASE = "NOPE"
TEMPLATE = "referrer_acknowledgement"
DUTY = "referrer_acknowledgement"
ALL_SCOPES = {Scope.CASES_READ, Scope.OUTBOX_READ, Scope.EVENTS_WRITE}

# Who may see which case. C1 is front-door's, allocated to W1; C2 is east's, also allocated to
# W1 (so W1 sees it by allocation, not by team). A social worker sees only what is allocated to
# them (issue 9), so W2 and X1 see neither. A service manager sees the teams they manage (issue
# 9: no longer every case): SM1 front-door, SM9 east.
SEES: dict[str, set[str]] = {
    "W1": {"C1", "C2"},
    "W2": set(),
    "TM1": {"C1"},
    "SM1": {"C1"},
    "X1": set(),
    "TM9": {"C2"},
    "SM9": {"C2"},
}
CLIENTS: dict[str, tuple[Actor, set[str]]] = {
    "cms": (client("cms", ALL_SCOPES), {"C1", "C2"}),
    "east-app": (client("east-app", ALL_SCOPES, {"east"}), {"C2"}),
    "caseloop": (SYSTEM, {"C1", "C2"}),
}


@pytest.fixture
def rt(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    runtime = letter_runtime(database_url, tmp_path / "var", MovableClock(NOW))
    import_staff(
        runtime,
        *front_door_staff(),
        staff_row("SM9", "service_manager", team="east"),
        staff_row("TM9", "team_manager", team="east", manager="SM9"),
        staff_row("X1", team="east", manager="TM9"),
    )
    report = import_events(
        runtime,
        *case("C1", "front-door"),
        *case("C2", "east"),
        now=NOW.isoformat(),
    )
    assert report.ok, report.rejected
    yield runtime
    runtime.close()


def case(ref: str, team: str) -> list[dict[str, Any]]:
    """A domestic-abuse case (so every letter is held for review) allocated to W1."""
    return [
        referral(
            ref,
            "2026-11-03T08:00:00+00:00",
            id=f"{ref}-ref",
            team=team,
            flags=["domestic_abuse"],
            household=[person("P1")],
        ),
        event("worker.allocated", ref, "2026-11-03T08:05:00+00:00", id=f"{ref}-w", worker="W1"),
    ]


def held(rt: Runtime, ref: str) -> int:
    [letter] = [m for m in letters_of(rt, ref) if m.kind == TEMPLATE]
    assert letter.status == "held"
    return int(letter.id)


def missing_outbox_id(rt: Runtime) -> int:
    return max(m.id for ref in ("C1", "C2") for m in letters_of(rt, ref)) + 1000


def answer(call: Callable[[], object], name: str) -> tuple[type[Exception], str]:
    """The error ``call`` raises, with the name it was asked about replaced by ``<name>``."""
    with pytest.raises(CaseloopError) as raised:
        call()
    return type(raised.value), str(raised.value).replace(name, "<name>")


def actors(rt: Runtime) -> dict[str, tuple[Actor, set[str]]]:
    staff = {sid: (identify(rt, sid), cases) for sid, cases in SEES.items()}
    return {**staff, **CLIENTS}


# -- the rule ----------------------------------------------------------------------------------


def test_who_sees_which_case_in_python_and_in_sql_alike(rt: Runtime) -> None:
    with rt.reading() as uow:
        cases = {c.ref: c for c in uow.session.scalars(select(Case))}
        for name, (actor, expected) in actors(rt).items():
            seen = {ref for ref, c in cases.items() if may_see(actor, c)}
            listed = set(uow.session.scalars(select(Case.ref).where(visible_cases(actor))))
            assert (name, seen) == (name, expected)
            assert (name, listed) == (name, expected)


def test_reads_show_each_actor_only_what_it_may_see(rt: Runtime) -> None:
    for name, (actor, expected) in actors(rt).items():
        for ref in ("C1", "C2"):
            if ref in expected:
                assert queries.case(rt, actor, ref, LATER)["case"] == ref
        assert {r["case"] for r in queries.overdue(rt, actor, None, LATER)} == expected, name
        assert {r["case"] for r in queries.outbox(rt, actor) if r["case"]} == expected, name


# -- not seen is not found ---------------------------------------------------------------------


def test_a_case_an_actor_may_not_see_is_answered_as_one_that_does_not_exist(rt: Runtime) -> None:
    letters = {ref: held(rt, ref) for ref in ("C1", "C2")}
    nowhere = missing_outbox_id(rt)
    checked = 0
    for name, (actor, sees) in actors(rt).items():
        for ref in {"C1", "C2"} - sees:
            oid = letters[ref]

            def by_case(ref_: str, actor: Actor = actor) -> list[Callable[[], object]]:
                return [
                    lambda: queries.case(rt, actor, ref_, LATER),
                    lambda: preview_template(rt, actor, TEMPLATE, ref_, "text"),
                ]

            def by_message(oid_: int, actor: Actor = actor) -> list[Callable[[], object]]:
                return [lambda: show_message(rt, actor, oid_, "text")]

            pairs = list(zip(by_case(ref), by_case(MISSING_CASE), strict=True))
            messages = list(zip(by_message(oid), by_message(nowhere), strict=True))
            if actor.kind is Kind.STAFF:
                pairs.append(
                    (
                        lambda a=actor, r=ref: record_duty_done(rt, a, r, DUTY, NOW),
                        lambda a=actor: record_duty_done(rt, a, MISSING_CASE, DUTY, NOW),
                    )
                )
                messages += [
                    (
                        lambda a=actor, o=oid: approve_letter(rt, a, o, "ok", NOW),
                        lambda a=actor: approve_letter(rt, a, nowhere, "ok", NOW),
                    ),
                    (
                        lambda a=actor, o=oid: reject_letter(rt, a, o, "not safe", NOW),
                        lambda a=actor: reject_letter(rt, a, nowhere, "not safe", NOW),
                    ),
                ]
            for hidden, absent in pairs:
                got = answer(hidden, ref)
                assert got == answer(absent, MISSING_CASE), name
                assert got == (NotFound, "no case '<name>'")
                checked += 1
            for hidden, absent in messages:
                got = answer(hidden, str(oid))
                assert got == answer(absent, str(nowhere)), name
                assert got == (NotFound, "no outbox message <name>")
                checked += 1
            # Lists: the case's messages and clocks are simply absent, as for no case at all.
            assert queries.outbox(rt, actor, ref) == queries.outbox(rt, actor, MISSING_CASE) == []
            assert ref not in {r["case"] for r in queries.overdue(rt, actor, None, LATER)}
    # W2 and X1: 6 answers for each of two cases; TM1, SM1, TM9 and SM9: 6; east-app: 3.
    assert checked == 51
    # Nothing was changed by any refusal.
    assert all(m.status == "held" for ref in ("C1", "C2") for m in letters_of(rt, ref))


def test_those_who_may_see_a_case_may_act_on_it(rt: Runtime) -> None:
    c2 = held(rt, "C2")
    assert "Referrer Example" in str(preview_template(rt, identify(rt, "TM9"), TEMPLATE, "C2", "text"))
    assert show_message(rt, identify(rt, "TM9"), c2, "text").summary.startswith(f"outbox {c2}:")
    approve_letter(rt, identify(rt, "W1"), c2, "allocated to me", NOW)  # by allocation, not team
    with pytest.raises(Conflict) as refused:
        reject_letter(rt, identify(rt, "SM9"), c2, "too late", NOW)
    assert str(refused.value) == f"outbox {c2} is queued, not held: only held letters are reviewed"
    assert record_duty_done(rt, identify(rt, "SM1"), "C1", DUTY, NOW) is True


# -- clients and their scopes ------------------------------------------------------------------


def test_a_client_without_the_scope_is_forbidden_naming_the_scope(rt: Runtime) -> None:
    c1 = held(rt, "C1")
    bare = client("reporting", set())
    cases = "reporting may not read a case (needs scope cases:read)"
    refusals: list[tuple[Callable[[], object], str]] = [
        (lambda: queries.case(rt, bare, "C1", LATER), cases),
        (lambda: queries.overdue(rt, bare, None, LATER), cases),
        (lambda: preview_template(rt, bare, TEMPLATE, "C1", "text"), cases),
        (lambda: queries.outbox(rt, bare), "reporting may not read the outbox (needs scope outbox:read)"),
        (
            lambda: show_message(rt, bare, c1, "text"),
            "reporting may not read the outbox (needs scope outbox:read)",
        ),
        (
            lambda: intake.import_events(rt, bare, jsonl(referral("C9", "2026-11-03")), "api", NOW),
            "reporting may not import events (needs scope events:write)",
        ),
        (lambda: intake.retry_rejected(rt, bare, NOW), "reporting may not retry or dismiss rejected events"),
    ]
    for call, message in refusals:
        assert answer(call, "\0") == (Forbidden, message)
    # A scope on another team's case still answers "not found", never "forbidden".
    reader = client("east-reader", {Scope.CASES_READ}, {"east"})
    assert answer(lambda: queries.case(rt, reader, "C1", LATER), "C1") == (NotFound, "no case '<name>'")
    # Reviewing and recording are for people, in their own name.
    everything = client("cms", ALL_SCOPES)
    for call in (
        lambda: approve_letter(rt, everything, c1, None, NOW),
        lambda: reject_letter(rt, everything, c1, "no", NOW),
        lambda: record_duty_done(rt, everything, "C1", DUTY, NOW),
    ):
        kind, message = answer(call, "\0")
        assert kind is Forbidden and message.startswith("only a member of staff may "), message


def test_errors_are_typed_under_caseloop_error(rt: Runtime) -> None:
    for kind in (Forbidden, NotFound, Conflict, Invalid):
        assert issubclass(kind, CaseloopError)
    w1 = identify(rt, "W1")
    assert answer(lambda: identify(rt, "NOBODY"), "\0") == (
        Forbidden,
        "NOBODY is not a known member of staff",
    )
    assert answer(lambda: reject_letter(rt, w1, held(rt, "C1"), "  ", NOW), "\0") == (
        Invalid,
        "a rejection needs a reason",
    )
    assert answer(lambda: record_duty_done(rt, w1, "C1", "no_such_duty", NOW), "\0") == (
        Invalid,
        "no duty 'no_such_duty' in the policy",
    )
    assert answer(lambda: queries.outbox(rt, w1, None, "lost"), "\0")[0] is Invalid


# -- the CLI -----------------------------------------------------------------------------------


class Cli:
    def __init__(self, rt: Runtime, tmp_path: Path) -> None:
        self.env = {
            "CASELOOP_DATABASE_URL": rt.db.url,
            "CASELOOP_VAR_DIR": str(tmp_path / "var"),
            "COLUMNS": "200",
        }
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Result:
        return self.runner.invoke(app, ["--now", LATER.isoformat(), *args], env=self.env)


def refusal(result: Result, name: str) -> tuple[int, str, str]:
    return result.exit_code, result.stdout, result.stderr.replace(name, "<name>")


def test_the_cli_answers_an_unseen_case_as_one_that_does_not_exist(rt: Runtime, tmp_path: Path) -> None:
    cli = Cli(rt, tmp_path)
    c1, nowhere = held(rt, "C1"), missing_outbox_id(rt)
    for staff in ("X1", "TM9", "SM9"):
        by_case = [
            ["case", "show", "{}", "--as", staff],
            ["templates", "preview", TEMPLATE, "--case", "{}", "--as", staff],
            ["duties", "done", "{}", DUTY, "--by", staff],
        ]
        for args in by_case:
            hidden = refusal(cli(*(a.format("C1") for a in args)), "C1")
            assert hidden == refusal(cli(*(a.format(MISSING_CASE) for a in args)), MISSING_CASE)
            assert hidden == (2, "", "error: no case '<name>'\n"), args
        by_message = [
            ["outbox", "show", "{}", "--as", staff],
            ["outbox", "approve", "{}", "--by", staff],
            ["outbox", "reject", "{}", "--by", staff, "--reason", "not safe"],
        ]
        for args in by_message:
            hidden = refusal(cli(*(a.format(c1) for a in args)), str(c1))
            assert hidden == refusal(cli(*(a.format(nowhere) for a in args)), str(nowhere))
            assert hidden == (2, "", "error: no outbox message <name>\n"), args
        listed = cli("outbox", "list", "--case", "C1", "--as", staff)
        assert (
            listed.exit_code == 0
            and listed.stdout == cli("outbox", "list", "--case", MISSING_CASE, "--as", staff).stdout
        )
        assert listed.stdout.strip() == "the outbox is empty"
        overdue = cli("queue", "overdue", "--as", staff)
        assert overdue.exit_code == 0 and "C1" not in overdue.stdout
        assert ("C2" in overdue.stdout) == ("C2" in SEES[staff])
    # Someone who may see it gets it.
    shown = cli("case", "show", "C1", "--as", "TM1")
    assert shown.exit_code == 0 and shown.stdout.startswith("case C1 ")
    unknown = cli("case", "show", "C1", "--as", "NOBODY")
    assert (unknown.exit_code, unknown.stderr) == (2, "error: NOBODY is not a known member of staff\n")
    assert [m.status for m in letters_of(rt, "C1")] == ["held"]
