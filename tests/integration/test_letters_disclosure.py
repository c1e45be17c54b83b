"""Who may be told what (issue 4, part 3; domain section 4), on SQLite and PostgreSQL.

Two cases are built through the real intake with a distinct canary in every field the case record
holds: the child, the school, the referrer (a professional on one case, a neighbour on the other),
each household member (one with a confidential address, one easy-read, one not safe to contact),
assessment factors, flags, the team and the worker. Every letter the duties create is rendered by
``Runtime.letters.render`` exactly as it would be sent, and each audience's letter may contain only
the canaries of its own fields.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jinja2.exceptions import SecurityError

import letters
from config.wiring import Runtime
from letters.catalogue import Catalogue
from letters.rendering import RenderError
from letters.views import BELOW_THRESHOLD, DECISIONS
from messaging.compose import order_of
from tests.factories import (
    MovableClock,
    event,
    import_events,
    import_staff,
    letter_runtime,
    letters_of,
    person,
    referral,
    staff_row,
)

NOW = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)

CHILD = {"first": "Zorbafirst", "last": "Quillonlast", "dob": "23 July 2015"}
SCHOOL = {
    "name": "Wyvernhurst Academy",
    "dsl": "Dslcanary Marbleton",
    "email": "dsl.canary@wyvern.example",
    "address": "Schoolcanary Lane, Wyvtowncanary",
}
PROFESSIONAL = {
    "source": "3A",
    "name": "Refcanary Ashdown",
    "organisation": "Orgcanary Health Centre",
    "email": "refcanary@health.example",
    "address": "Refstreetcanary Road, Reftowncanary",
}
NEIGHBOUR = {
    "source": "1B",
    "name": "Neighcanary Busybody",
    "organisation": "Neighorgcanary Residents",
    "email": "neighcanary@home.example",
    "address": "Neighstreetcanary Close, Neightowncanary",
}
PEOPLE: dict[str, dict[str, Any]] = {
    "P1": {
        "name": "Parentone Canarysmith",
        "relationship": "Relcanaryone",
        "email": "p1canary@fam.example",
        "address": "Oneaddrcanary Road, Onetowncanary",
    },
    "P2": {
        "name": "Parenttwo Canaryjones",
        "relationship": "Relcanarytwo",
        "email": "p2canary@fam.example",
        "address": "Refugecanary House, Secretvillecanary",
        "confidential_address": True,
        "preferred_channel": "email",
    },
    "P3": {
        "name": "Parentthree Canarylee",
        "relationship": "Relcanarythree",
        "email": "p3canary@fam.example",
        "address": "Threeaddrcanary Way, Threetowncanary",
        "easy_read": True,
    },
    "P4": {
        "name": "Unsafe Canarydanger",
        "relationship": "Relcanaryfour",
        "email": "p4canary@fam.example",
        "address": "Dangeraddrcanary Row, Dangertowncanary",
        "safe_to_contact": False,
    },
}
FACTORS, FLAG, TEAM, WORKER = ("16A", "18B"), "protection_order", "teamcanaryeast", "Workercanary Pemberton"


def tokens(fields: dict[str, Any], *keys: str) -> set[str]:
    """The canary strings of ``keys``: names, emails, and each line of an address."""
    found: set[str] = set()
    for key in keys:
        value = str(fields[key])
        found.update(part.strip() for part in value.split(",")) if key == "address" else found.add(value)
    return found


CHILD_NAME = {f"{CHILD['first']} {CHILD['last']}", CHILD["last"]}
SCHOOL_ALL = tokens(SCHOOL, "name", "dsl", "email", "address")
PERSON_ALL = {pid: tokens(p, "name", "relationship", "email", "address") for pid, p in PEOPLE.items()}
HOUSEHOLD_ALL = set().union(*PERSON_ALL.values())
CASE_DETAIL = {*FACTORS, FLAG}


def referrer_all(referrer: dict[str, Any]) -> set[str]:
    return tokens(referrer, "name", "organisation", "email", "address")


@pytest.fixture
def rt(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    runtime = letter_runtime(database_url, tmp_path / "var", MovableClock(NOW))
    import_staff(runtime, staff_row("WC", team=TEAM, name=WORKER))
    yield runtime
    runtime.close()


def canary_case(rt: Runtime, ref: str, referrer: dict[str, Any], decision: str) -> None:
    household = [person(pid, **fields) for pid, fields in PEOPLE.items()]
    child = {
        "name": f"{CHILD['first']} {CHILD['last']}",
        "dob": "2015-07-23",
        "school": {
            "name": SCHOOL["name"],
            "dsl_name": SCHOOL["dsl"],
            "email": SCHOOL["email"],
            "address": SCHOOL["address"],
        },
    }
    steps = [
        referral(
            ref,
            "2026-11-02T09:00:00+00:00",
            child=child,
            referrer=referrer,
            household=household,
            team=TEAM,
            flags=[FLAG],
        ),
        event("worker.allocated", ref, "2026-11-02T09:05:00+00:00", worker="WC"),
        event("decision.made", ref, "2026-11-02T09:10:00+00:00", outcome=decision),
    ]
    if decision == "assessment":
        steps.append(
            event(
                "assessment.completed", ref, "2026-11-02T11:00:00+00:00", outcome="nfa", factors=list(FACTORS)
            )
        )
    # Closed the next day: closed the same day, the decision letter would be its closing letter too.
    steps.append(
        event(
            "case.closed",
            ref,
            "2026-11-03T08:00:00+00:00",
            reason="RC8" if decision == "assessment" else "NFA",
        )
    )
    report = import_events(rt, *steps, now=NOW.isoformat())
    assert report.ok, report.rejected


def rendered(rt: Runtime, ref: str) -> list[tuple[str, str, str, str]]:
    """(kind, recipient, subject, text + html) of every letter the case's duties made."""
    out = []
    with rt.db.transaction() as session:
        for row in letters_of(rt, ref):
            letter, _ = rt.letters.render(session, order_of(row))
            out.append((row.kind, row.recipient, letter.subject, letter.text + "\n" + letter.html))
    return out


def check(content: str, allowed: set[str], required: set[str], everything: set[str]) -> None:
    leaked = sorted(t for t in everything - allowed if t in content)
    assert leaked == [], f"disclosed: {leaked}"
    missing = sorted(t for t in required if t not in content)
    assert missing == [], f"missing its own fields: {missing}"


@pytest.fixture
def both_cases(rt: Runtime) -> dict[str, list[tuple[str, str, str, str]]]:
    canary_case(rt, "CANARY-PRO", PROFESSIONAL, "assessment")
    canary_case(rt, "CANARY-PUB", NEIGHBOUR, "nfa")
    return {"pro": rendered(rt, "CANARY-PRO"), "pub": rendered(rt, "CANARY-PUB")}


def everything(referrer: dict[str, Any]) -> set[str]:
    return (
        CHILD_NAME
        | {CHILD["first"], CHILD["dob"]}
        | SCHOOL_ALL
        | referrer_all(referrer)
        | HOUSEHOLD_ALL
        | CASE_DETAIL
        | {TEAM, WORKER}
    )


def test_every_template_is_rendered_for_its_audience(rt: Runtime, both_cases: dict[str, Any]) -> None:
    made = {(kind, who) for case in both_cases.values() for kind, who, _, _ in case}
    # The school hears the involvement ended only once it was told of it (test_letters_wording.py).
    assert {kind for kind, _ in made} == set(rt.catalogue.keys()) - {"school_involvement_ended"}
    assert sorted(who for kind, who in made if kind.startswith("family_")) == [
        "P1",
        "P1",
        "P2",
        "P2",
        "P3",
        "P3",
    ]  # P4 is not safe to contact: never written to


def test_no_subject_names_the_child_or_anyone_else(both_cases: dict[str, Any]) -> None:
    for case, referrer in (("pro", PROFESSIONAL), ("pub", NEIGHBOUR)):
        for kind, who, subject, _ in both_cases[case]:
            assert [t for t in everything(referrer) if t in subject] == [], (kind, who, subject)


def test_the_school_is_told_the_child_and_whom_to_contact_only(both_cases: dict[str, Any]) -> None:
    [content] = [c for kind, _, _, c in both_cases["pro"] if kind == "school_worker_involved"]
    own = CHILD_NAME | {CHILD["first"], CHILD["dob"]} | SCHOOL_ALL | {TEAM, WORKER}
    check(
        content,
        own,
        {f"{CHILD['first']} {CHILD['last']}", CHILD["dob"], SCHOOL["dsl"], WORKER},
        everything(PROFESSIONAL),
    )


def test_a_professional_referrer_is_told_the_decision_not_the_family(both_cases: dict[str, Any]) -> None:
    letters_ = {kind: c for kind, who, _, c in both_cases["pro"] if who == "referrer"}
    assert sorted(letters_) == ["referrer_acknowledgement", "referrer_closure_notice", "referrer_outcome"]
    own = CHILD_NAME | {CHILD["first"], CHILD["dob"]} | referrer_all(PROFESSIONAL)
    for content in letters_.values():
        check(content, own, {PROFESSIONAL["name"], PROFESSIONAL["organisation"]}, everything(PROFESSIONAL))
    assert DECISIONS["assessment"] in letters_["referrer_outcome"]


def test_a_neighbour_who_referred_is_acknowledged_and_told_nothing_more(both_cases: dict[str, Any]) -> None:
    [(kind, content)] = [(k, c) for k, who, _, c in both_cases["pub"] if who == "referrer"]
    assert kind == "referrer_acknowledgement"
    own = CHILD_NAME | {CHILD["first"]} | tokens(NEIGHBOUR, "name", "email", "address")
    check(content, own, {NEIGHBOUR["name"], "Neighstreetcanary Close"}, everything(NEIGHBOUR))
    said = [s for s in (*DECISIONS.values(), *BELOW_THRESHOLD.values(), "no further action") if s in content]
    assert said == []


@pytest.mark.parametrize("case", ["pro", "pub"])
def test_a_family_letter_has_its_own_address_and_no_one_elses(both_cases: dict[str, Any], case: str) -> None:
    referrer = PROFESSIONAL if case == "pro" else NEIGHBOUR
    family = [(kind, who, c) for kind, who, _, c in both_cases[case] if kind.startswith("family_")]
    assert len(family) == (3 if case == "pro" else 6)
    for kind, who, content in family:
        own = {CHILD["first"], CHILD["last"], WORKER, *PERSON_ALL[who]} - tokens(PEOPLE[who], "relationship")
        if case == "pro":  # a professional referrer's organisation, at most; never a person's name
            own.add(PROFESSIONAL["organisation"])
        required = {PEOPLE[who]["name"], PEOPLE[who]["address"].split(",")[0], CHILD["first"]}
        check(
            content,
            own,
            required | ({PROFESSIONAL["organisation"]} if case == "pro" else set()),
            everything(referrer),
        )
        # P3 asked for easy read: the decision and the closing letter have that variant
        assert kind.endswith("_easy_read") == (who == "P3")


def test_a_referrer_outcome_is_never_rendered_for_a_member_of_the_public(rt: Runtime) -> None:
    canary_case(rt, "CANARY-PUB", NEIGHBOUR, "nfa")
    [ack] = [m for m in letters_of(rt, "CANARY-PUB") if m.recipient == "referrer"]
    ack.kind = "referrer_outcome"
    with rt.db.transaction() as session, pytest.raises(RenderError) as refused:
        rt.letters.render(session, order_of(ack))
    assert str(refused.value) == "template referrer_outcome: field referral.professional must be one of: True"


def test_the_sandbox_refuses_to_walk_out_of_a_letter(rt: Runtime, tmp_path: Path) -> None:
    escape = "{{ ''.__class__.__mro__ }}"
    with pytest.raises(SecurityError):
        rt.catalogue.text_env.from_string(escape).render()
    folder = tmp_path / "templates"
    shutil.copytree(Path(letters.__file__).parent / "templates", folder)
    tampered = folder / "letters" / "family_closing_letter.txt.j2"
    tampered.write_text(tampered.read_text().replace("Dear {{ recipient.name }},", f"Dear {escape},", 1))
    problems = [str(p) for p in Catalogue(folder).check()]
    assert problems and all(
        p.startswith("family_closing_letter: letters/family_closing_letter.txt.j2: ") for p in problems
    )
    assert any("__class__" in p for p in problems)
    with pytest.raises(RenderError, match="family_closing_letter"):
        Catalogue(folder).load()
