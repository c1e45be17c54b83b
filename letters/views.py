"""Audience view-models: the only data a letter template ever receives.

A template never sees the case record. Each builder below copies, from the case, exactly what
its audience may be told (domain: who may be told what):

- a **family** member: the decision, why the council was involved and what it found in plain
  words, who supports them now, how to get help again, complain and ask for records; their own
  address only; a professional referrer's organisation at most, never a member of the public;
- a **professional referrer**: that the referral arrived, the decision and, below threshold, the
  reason and other help; never assessment factors, allegations or the household;
- a **non-professional referrer**: an acknowledgement only;
- a **school's safeguarding lead**: the child's name and date of birth, that a social worker is
  involved, and whom to contact; nothing else.
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any

from letters.council import Council
from workflow.census import FAMILY_SOURCE, NON_PROFESSIONAL_SOURCES, SELF_SOURCE
from workflow.duties import school_contact
from workflow.model import Case

# Each completes "We decided that …" as a sentence of its own, for every outcome.
DECISIONS = {
    "nfa": "children's social care will take no further action",
    "early_help": "early help services, rather than a social worker, are the right support for the family",
    "assessment": "a social worker will carry out an assessment of the child's needs",
    "strategy": "a social worker will meet the police and other agencies urgently to decide how to keep "
    "the child safe",
}
BELOW_THRESHOLD = {
    "nfa": "The information we received did not show that the child needed a social worker's help.",
    "early_help": "The family's needs can best be met by early help services, without a social worker.",
}
# Closing-letter variants by census reason: what was decided, in plain words.
CLOSURE_VARIANTS = {
    "NFA": "no_further_action",
    "RC8": "no_further_action",
    "RC9": "early_help",
    "RC7": "no_longer_needed",
    "RC5": "moved_away",
    "RC6": "adult_services",
    "RC3": "court_order",
    "RC4": "court_order",
    "RC1": "adopted",
    "RC2": "died",
}


def closure_variant(case: Case) -> str:
    """What the closing letter says was decided. A referral closed at the referral stage (NFA)
    after a decision to step down to early help says early help, as its decision letter did."""
    if case.closure_reason == "NFA" and case.decision == "early_help":
        return "early_help"
    return CLOSURE_VARIANTS.get(case.closure_reason or "", "")


def long_date(day: date) -> str:
    return f"{day.day} {day:%B %Y}"


def local_long_date(instant: datetime, zone: tzinfo) -> str:
    """The council's calendar date of ``instant``: a referral at 23:30 UTC on 31 March (BST) was
    made on 1 April, and its letters say so."""
    return long_date(instant.astimezone(zone).date())


def _lines(address: str | None) -> list[str]:
    return [part.strip() for part in (address or "").split(",") if part.strip()]


def council_view(council: Council) -> dict[str, Any]:
    view = council.model_dump(mode="json")
    # The PDF renderer may load files from the logo's own folder only: refer to it by name.
    view["logo"] = Path(council.logo).name if council.logo else ""
    return view


def _letter(case: Case, today: date, easy_read: bool = False) -> dict[str, Any]:
    return {"date": long_date(today), "reference": case.ref, "easy_read": easy_read}


def _child(case: Case, with_dob: bool) -> dict[str, Any]:
    name = str(case.child["name"])
    view: dict[str, Any] = {"name": name, "first_name": name.split()[0]}
    if with_dob:
        view["dob"] = long_date(date.fromisoformat(case.child["dob"]))
    return view


def is_professional(case: Case) -> bool:
    return case.referral_source not in NON_PROFESSIONAL_SOURCES


def _same_person(a: object, b: object) -> bool:
    return (
        isinstance(a, str)
        and isinstance(b, str)
        and " ".join(a.casefold().split()) == " ".join(b.casefold().split())
    )


def _referrer_in_household(case: Case) -> bool:
    """Whether the referral came from inside the family: the child (1C, self), or a relative or
    carer (1A) who is one of the household. The case system does not link them, so by name."""
    if case.referral_source == SELF_SOURCE:
        return True
    name = case.referrer.get("name")
    in_household = any(_same_person(name, p["name"]) for p in case.household)
    return case.referral_source == FAMILY_SOURCE and in_household


def _who_contacted(case: Case, person: dict[str, Any]) -> str:
    """How a family letter to ``person`` says who contacted us (``family_words.why``): a
    professional's organisation; "you" to the very person who referred; otherwise nobody is
    named, since a member of the public, or a child who asked for help, is never named to the
    family without their consent."""
    if is_professional(case) and case.referrer.get("organisation"):
        return "organisation"
    if _same_person(case.referrer.get("name"), person["name"]) and case.referral_source in (
        SELF_SOURCE,
        FAMILY_SOURCE,
    ):
        return "yourself" if _same_person(person["name"], case.child.get("name")) else "you"
    return "unnamed"


def _what_happened(case: Case) -> str:
    if case.assessment_completed:
        return "A social worker completed an assessment with your family."
    if case.assessment_started:
        return (
            "A social worker started an assessment with your family. Our work ended before the "
            "assessment was finished, so it was not completed."
        )
    if case.decision in ("strategy",):
        return "A social worker and partner agencies looked into the concerns."
    return "We looked carefully at the information we received. We did not need to do an assessment."


def family_view(
    case: Case,
    person: dict[str, Any],
    council: Council,
    today: date,
    worker_name: str | None,
    zone: tzinfo,
) -> dict[str, Any]:
    professional = is_professional(case)
    return {
        "council": council_view(council),
        "letter": _letter(case, today, bool(person.get("easy_read"))),
        "recipient": {"name": person["name"], "address_lines": _lines(person.get("address"))},
        "child": _child(case, with_dob=False),
        "involvement": {
            "referred_on": local_long_date(case.referral_at, zone),
            "contacted_by": _who_contacted(case, person),
            "referrer": case.referrer.get("organisation") if professional else None,
            "what_happened": _what_happened(case),
        },
        "decision": {"key": case.decision or "", "text": DECISIONS.get(case.decision or "", "")},
        "closure": {
            "variant": closure_variant(case),
            "closed_on": local_long_date(case.closed_at, zone) if case.closed_at else "",
        },
        "support": {"worker_name": worker_name, "team": council.team_name(case.team)},
    }


def _referred_by(case: Case) -> str:
    """Who referred, for the acknowledgement's wording: a professional, the child, their family,
    or someone else (who is told nothing more)."""
    if is_professional(case):
        return "professional"
    if case.referral_source == SELF_SOURCE:
        return "self"
    return "family" if _referrer_in_household(case) else "public"


def referrer_view(case: Case, council: Council, today: date, zone: tzinfo) -> dict[str, Any]:
    referrer = case.referrer
    professional = is_professional(case)
    decision = case.decision or ""
    view: dict[str, Any] = {
        "council": council_view(council),
        "letter": _letter(case, today),
        "recipient": {
            "name": referrer.get("name") or "Sir or Madam",
            "organisation": referrer.get("organisation") if professional else None,
            "address_lines": _lines(referrer.get("address")),
        },
        "referral": {
            "received_on": local_long_date(case.referral_at, zone),
            "professional": professional,
            "by": _referred_by(case),
        },
        "child": _child(case, with_dob=professional),
    }
    if professional:  # members of the public are acknowledged, and told nothing more
        view["decision"] = {
            "key": decision,
            "text": DECISIONS.get(decision, ""),
            "reason": BELOW_THRESHOLD.get(decision),
            "other_help": council.early_help if decision in BELOW_THRESHOLD else None,
        }
        view["closure"] = {"closed_on": local_long_date(case.closed_at, zone) if case.closed_at else ""}
    return view


def school_view(case: Case, council: Council, today: date, worker_name: str | None) -> dict[str, Any]:
    contact = school_contact(case) or {}
    return {
        "council": council_view(council),
        "letter": _letter(case, today),
        "recipient": {
            "name": contact.get("name") or "Designated Safeguarding Lead",
            "school": contact.get("school") or "",
            "address_lines": _lines(contact.get("address")),
        },
        "child": _child(case, with_dob=True),
        "contact": {
            "worker_name": worker_name,
            "team": council.team_name(case.team),
            "phone": council.front_door_phone,
            "email": council.email,
        },
    }
