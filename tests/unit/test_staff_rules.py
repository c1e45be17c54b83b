"""Small rules behind staff work (issue 8): who a worker can still tell by hand, when a leaver is
gone, and the choices of `duty done --how`. No I/O."""

from __future__ import annotations

from datetime import date

import pytest

from cli.staff_outbox import How
from workflow.census import NON_PROFESSIONAL_SOURCES, REFERRAL_SOURCES, reachable_professional
from workflow.events import HOW_DONE
from workflow.staff import Staff


def test_the_how_option_offers_exactly_the_event_contracts_choices() -> None:
    assert tuple(h.value for h in How) == HOW_DONE


@pytest.mark.parametrize("source", sorted(REFERRAL_SOURCES))
def test_every_professional_source_can_be_told_by_hand_and_no_member_of_the_public(source: str) -> None:
    expected = source not in NON_PROFESSIONAL_SOURCES and source != "10"
    assert reachable_professional({"source": source}) is expected


def test_an_unknown_source_counts_as_professional_only_with_an_organisation() -> None:
    assert reachable_professional({"source": "10", "organisation": "Example Charity"})
    assert not reachable_professional({"source": "10", "organisation": ""})
    assert not reachable_professional({"source": "1A", "organisation": "Example Charity"})


def test_a_leaver_is_present_until_the_day_before_their_leaving_day() -> None:
    person = Staff(id="W1", active=True, left_on=date(2026, 11, 4))
    assert person.present_on(date(2026, 11, 3))
    assert not person.present_on(date(2026, 11, 4))
    assert not person.present_on(date(2026, 12, 1))
    assert Staff(id="W2", active=True, left_on=None).present_on(date(2030, 1, 1))
    assert not Staff(id="W3", active=False, left_on=None).present_on(date(2026, 11, 3))
