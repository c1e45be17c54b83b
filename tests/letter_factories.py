"""Factories for letter tests: a Case built in memory (no database) and its audience views."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from config.council import DEFAULT_COUNCIL_FILE, load_council
from letters import views
from letters.council import Council
from workflow.model import Case

TODAY = date(2026, 3, 16)
LONDON = ZoneInfo("Europe/London")
CHILD = "Rowan Testchild"
PARENT = "Alex Parent"
PROFESSIONAL = "Morgan Teacher"
NEIGHBOUR = "Jamie Neighbour"  # a member of the public: must never reach a family letter
SCHOOL_LEAD = "Sam Safeguard"
WORKER = "Pat Worker"

# Closure reasons by letter variant (one census code each).
VARIANT_REASONS = {
    "no_further_action": "RC8",
    "early_help": "RC9",
    "no_longer_needed": "RC7",
    "moved_away": "RC5",
    "adult_services": "RC6",
    "court_order": "RC3",
    "adopted": "RC1",
    "died": "RC2",
}


def council() -> Council:
    return load_council(DEFAULT_COUNCIL_FILE)


def household_member(**overrides: Any) -> dict[str, Any]:
    base = {
        "id": "P1",
        "name": PARENT,
        "relationship": "mother",
        "email": "parent@example.org",
        "address": "1 Test Street, Example Town, EX1 2BB",
        "preferred_channel": "post",
        "safe_to_contact": True,
        "confidential_address": False,
        "easy_read": False,
    }
    return {**base, **overrides}


def case(
    *,
    source: str = "2A",
    decision: str | None = "nfa",
    closure_reason: str | None = "RC8",
    assessment_completed: bool = True,
    referrer_name: str = PROFESSIONAL,
    organisation: str | None = "Test Primary School",
    child_name: str = CHILD,
    **overrides: Any,
) -> Case:
    """A closed case referred by a school, unless told otherwise."""
    closed = closure_reason is not None
    fields: dict[str, Any] = {
        "ref": "CL-2026-0042",
        "state": "closed" if closed else "open",
        "team": "front-door",
        "worker": "w1",
        "referral_at": datetime(2026, 2, 2, 9, 30, tzinfo=UTC),
        "referral_source": source,
        "decision": decision,
        "assessment_started": assessment_completed,
        "assessment_completed": assessment_completed,
        "factors": [],
        "flags": [],
        "child": {
            "name": child_name,
            "dob": "2016-05-01",
            "school": {
                "name": "Test Primary School",
                "dsl_name": SCHOOL_LEAD,
                "email": "dsl@school.example",
                "address": "School Lane, Example Town, EX1 3CC",
            },
        },
        "referrer": {
            "source": source,
            "organisation": organisation,
            "name": referrer_name,
            "email": "referrer@example.org",
            "address": "2 Referrer Road, Example Town, EX1 4DD",
        },
        "household": [household_member()],
        "closure_reason": closure_reason,
        "closed_at": datetime(2026, 3, 13, 15, 0, tzinfo=UTC) if closed else None,
        "updated_at": datetime(2026, 3, 13, 15, 0, tzinfo=UTC),
    }
    fields.update(overrides)
    return Case(**fields)


def neighbour_case(**overrides: Any) -> Case:
    """A case referred by a member of the public (source 1B), who is named in the referral."""
    return case(source="1B", referrer_name=NEIGHBOUR, organisation="Neighbour Watch Street", **overrides)


def family(c: Case, person: dict[str, Any] | None = None, worker: str | None = WORKER) -> dict[str, Any]:
    return views.family_view(c, person or c.household[0], council(), TODAY, worker, LONDON)


def referrer(c: Case) -> dict[str, Any]:
    return views.referrer_view(c, council(), TODAY, LONDON)


def school(c: Case, worker: str | None = WORKER) -> dict[str, Any]:
    return views.school_view(c, council(), TODAY, worker)


def _both(**overrides: Any) -> tuple[tuple[str, Case], ...]:
    return (("professional", case(**overrides)), ("public", neighbour_case(**overrides)))


def sample_views() -> list[tuple[str, str, dict[str, Any]]]:
    """(template key, label, view): every template, for every variant and kind of referrer."""
    pro, public = case(), neighbour_case()
    samples: list[tuple[str, str, dict[str, Any]]] = [
        ("referrer_acknowledgement", "professional", referrer(pro)),
        ("referrer_acknowledgement", "public", referrer(public)),
        ("referrer_closure_notice", "professional", referrer(pro)),
        ("school_worker_involved", "with worker", school(pro)),
        ("school_worker_involved", "no worker", school(pro, worker=None)),
        ("school_involvement_ended", "professional", school(pro)),
    ]
    for decision in ("nfa", "early_help", "assessment", "strategy"):
        samples.append(("referrer_outcome", decision, referrer(case(decision=decision))))
    for decision in ("nfa", "early_help"):
        for label, c in _both(decision=decision):
            samples.append(("family_decision", f"{decision} {label}", family(c)))
            samples.append(("family_decision_easy_read", f"{decision} {label}", family(c)))
    for variant, reason in VARIANT_REASONS.items():
        for label, c in _both(closure_reason=reason):
            samples.append(("family_closing_letter", f"{variant} {label}", family(c)))
            samples.append(("family_closing_letter_easy_read", f"{variant} {label}", family(c)))
    before_assessment = case(closure_reason="NFA", assessment_completed=False)
    samples.append(("family_closing_letter", "referral nfa", family(before_assessment)))
    return samples


def with_override(view: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``view`` with ``path`` set to ``value`` (or removed, for ``...``)."""
    changed = copy.deepcopy(view)
    *parents, leaf = path.split(".")
    target = changed
    for part in parents:
        target = target[part]
    if value is ...:
        del target[leaf]
    else:
        target[leaf] = value
    return changed
