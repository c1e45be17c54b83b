"""Codes from the Children in Need census that caseloop records and checks."""

from __future__ import annotations

from enum import StrEnum

REFERRAL_SOURCES: dict[str, str] = {
    "1A": "family member, relative or carer",
    "1B": "acquaintance",
    "1C": "self",
    "1D": "other individual",
    "2A": "school",
    "2B": "education services",
    "3A": "GP",
    "3B": "health visitor",
    "3C": "school nurse",
    "3D": "other primary health services",
    "3E": "A&E",
    "3F": "other health services",
    "4": "housing",
    "5A": "local authority social care",
    "5B": "other internal local authority service",
    "5C": "another local authority",
    "5D": "early help",
    "6": "police",
    "7": "other legal agency",
    "8": "other",
    "9": "anonymous",
    "10": "unknown",
}

# Referrers who are members of the public: acknowledged only, never named to the family.
NON_PROFESSIONAL_SOURCES = frozenset({"1A", "1B", "1C", "1D", "9"})
SCHOOL_SOURCES = frozenset({"2A", "2B"})
UNKNOWN_SOURCE = "10"


def reachable_professional(referrer: dict[str, object]) -> bool:
    """Whether a referrer is a professional a worker can find and tell by phone even with no
    email or address: any source but the public's (1A-1D, 9) and "unknown" (10), which counts
    only when an organisation is named."""
    source = referrer.get("source")
    if source in NON_PROFESSIONAL_SOURCES:
        return False
    return source != UNKNOWN_SOURCE or bool(referrer.get("organisation"))


# Referrals from inside the family: the child themselves (1C), or a family member, relative or carer.
SELF_SOURCE, FAMILY_SOURCE = "1C", "1A"

CLOSURE_REASONS: dict[str, str] = {
    "RC1": "adopted",
    "RC2": "died",
    "RC3": "child arrangements order",
    "RC4": "special guardianship order",
    "RC5": "transferred to another local authority",
    "RC6": "transferred to adult social care",
    "RC7": "services ceased for any other reason, including no longer in need",
    "RC8": "case closed after assessment, no further action",
    "RC9": "case closed after assessment, referred to early help",
    "NFA": "referral closed with no further action before any assessment",
}
NEEDS_ASSESSMENT = frozenset({"RC8", "RC9"})
REFERRAL_NFA = "NFA"

ASSESSMENT_FACTORS = frozenset(
    {
        "1A",
        "1B",
        "1C",
        "2A",
        "2B",
        "2C",
        "3A",
        "3B",
        "3C",
        "4A",
        "4B",
        "4C",
        "5A",
        "5B",
        "5C",
        "6A",
        "6C",
        "7A",
        "8B",
        "8C",
        "8D",
        "8E",
        "8F",
        "9A",
        "10A",
        "11A",
        "12A",
        "13A",
        "14A",
        "15A",
        "16A",
        "17A",
        "18B",
        "18C",
        "19B",
        "19C",
        "20",
        "21",
        "22A",
        "23A",
        "24A",
    }
)
DOMESTIC_ABUSE_FACTORS = frozenset({"3A", "3B", "3C"})


class Flag(StrEnum):
    """Case flags that change how caseloop communicates: the warning notes case systems already
    record. Each one holds every letter and school notice on the case for a worker's review."""

    DOMESTIC_ABUSE = "domestic_abuse"  # domestic abuse known in the household
    MARAC = "marac"  # discussed at a multi-agency risk assessment conference
    PROTECTION_ORDER = "protection_order"  # a non-molestation, occupation or similar order in force
    DO_NOT_DISCLOSE = "do_not_disclose"  # someone's whereabouts or details must not be disclosed
    RESTRICTED = "restricted"  # a restricted record: only the people working on it may see it


# What the reviewer is told for each flag: why the letter waits.
FLAG_HOLDS: dict[Flag, str] = {
    Flag.DOMESTIC_ABUSE: "domestic abuse: a worker must review every letter",
    Flag.MARAC: "the case was discussed at MARAC: a worker must review every letter",
    Flag.PROTECTION_ORDER: "a protection order is in force: check who may be written to and where",
    Flag.DO_NOT_DISCLOSE: "do not disclose: check that no letter reveals details that must stay hidden",
    Flag.RESTRICTED: "a restricted record: a worker must review every letter",
}
# Closures after which no letter goes without a person reading it first.
SENSITIVE_CLOSURES: dict[str, str] = {
    "RC1": "the child was adopted: a worker must review every letter",
    "RC2": "the child died: a worker must review every letter before anything is sent",
}
