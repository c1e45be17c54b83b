"""What the letters say, read as a practitioner would (issue 8, point 13; dates, point 14): every
decision sentence, an assessment left unfinished, people who referred themselves, the marking,
team names, the easy-read decision letter, how to disagree and how to give a view, local dates."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from letters.catalogue import Catalogue
from tests import letter_factories as f

FAMILY_KEYS = (
    "family_decision",
    "family_decision_easy_read",
    "family_closing_letter",
    "family_closing_letter_easy_read",
)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue().load()


def section(text: str, heading: str) -> str:
    """The paragraphs under ``heading`` in a plain-text letter, up to the next heading."""
    after = text.split(f"\n{heading}\n", 1)[1].split("\n", 1)[1]  # skip the underline
    return re.split(r"\n\n[^\n]+\n-{3,}\n", after, maxsplit=1)[0].strip()


@pytest.mark.parametrize(
    ("outcome", "sentence"),
    [
        ("nfa", "We decided that children's social care will take no further action."),
        (
            "early_help",
            "We decided that early help services, rather than a social worker, are the right "
            "support for the family.",
        ),
        ("assessment", "We decided that a social worker will carry out an assessment of the child's needs."),
        (
            "strategy",
            "We decided that a social worker will meet the police and other agencies urgently to "
            "decide how to keep the child safe.",
        ),
    ],
)
def test_every_decision_is_one_whole_sentence(catalogue: Catalogue, outcome: str, sentence: str) -> None:
    letter = catalogue.render("referrer_outcome", f.referrer(f.case(decision=outcome)))
    assert section(letter.text, "Our decision") == sentence
    assert f"<p>{sentence.replace(chr(39), '&#39;')}</p>" in letter.html


@pytest.mark.parametrize("decision", ["nfa", "early_help"])
def test_the_family_hears_its_decision_in_whole_sentences(catalogue: Catalogue, decision: str) -> None:
    text = catalogue.render("family_decision", f.family(f.case(decision=decision))).text
    decided = section(text, "What we decided").split("\n\n")
    assert decided[0].startswith("We have decided that ")
    for paragraph in decided:
        assert paragraph[0].isupper() and paragraph.endswith("."), paragraph
        assert "  " not in paragraph and " ." not in paragraph


def test_an_assessment_started_and_not_finished_is_said_as_such(catalogue: Catalogue) -> None:
    midway = f.case(
        closure_reason="RC7", decision="assessment", assessment_completed=False, assessment_started=True
    )
    for key in ("family_closing_letter", "family_closing_letter_easy_read"):
        text = catalogue.render(key, f.family(midway)).text
        assert "A social worker started an assessment with your family" in text
        assert "so it was not completed" in text
        assert "completed an assessment" not in text and "did not need to do an assessment" not in text
    never = f.case(closure_reason="NFA", assessment_completed=False)
    assert (
        "We did not need to do an assessment."
        in catalogue.render("family_closing_letter", f.family(never)).text
    )


def test_a_parent_who_referred_is_told_you_contacted_us(catalogue: Catalogue) -> None:
    own = f.case(source="1A", referrer_name=f.PARENT, organisation=None, decision="nfa", closure_reason=None)
    text = catalogue.render("family_decision", f.family(own)).text
    assert "On 2 February 2026, you contacted us because you were worried about Rowan." in text
    assert "we were given information" not in text
    # The other parent is not told who referred: a member of the family is not named either.
    other = f.household_member(id="P2", name="Robin Otherparent")
    two = f.case(
        source="1A",
        referrer_name=f.PARENT,
        organisation=None,
        decision="nfa",
        closure_reason=None,
        household=[f.household_member(), other],
    )
    text = catalogue.render("family_decision", f.family(two, other)).text
    assert "we were given information that made us worried about Rowan" in text
    assert f.PARENT not in text and "you contacted us" not in text
    ack = catalogue.render("referrer_acknowledgement", f.referrer(own)).text
    assert "We will contact you and your family to tell you what we decide." in ack
    assert "protect the family's privacy" not in ack


def test_a_child_who_asked_for_help_is_spoken_to_as_themselves(catalogue: Catalogue) -> None:
    child = f.household_member(id="C1", name=f.CHILD, relationship="self")
    asked = f.case(
        source="1C",
        referrer_name=f.CHILD,
        organisation=None,
        decision="nfa",
        closure_reason=None,
        household=[f.household_member(), child],
    )
    mine = catalogue.render("family_decision", f.family(asked, child)).text
    assert "you contacted us and told us you were worried. You were right to ask us for help." in mine
    parent = catalogue.render("family_decision", f.family(asked)).text
    assert "we were given information" in parent and "you contacted us" not in parent  # never named
    ack = catalogue.render("referrer_acknowledgement", f.referrer(asked)).text
    assert "you were right to ask us for help" in ack and "decide how we can help you" in ack
    assert "protect the family's privacy" not in ack and "about Rowan Testchild" not in ack
    neighbour = catalogue.render("referrer_acknowledgement", f.referrer(f.neighbour_case())).text
    assert "protect the family's privacy" in neighbour  # an outsider still hears only this


def test_family_letters_are_private_and_confidential_and_no_other_is(catalogue: Catalogue) -> None:
    for key, label, view in f.sample_views():
        letter = catalogue.render(key, view)
        marked = "Private and confidential" in letter.text
        assert marked == (key in FAMILY_KEYS), (key, label)
        if marked:  # above the name, in the envelope window
            assert f"Private and confidential\n{view['recipient']['name']}\n" in letter.text
            assert "<strong>Private and confidential</strong><br>" in letter.html


def test_teams_are_named_by_their_display_names() -> None:
    council = f.council()
    assert council.team_name("front-door") == "Front Door"
    assert council.team_name("assessment-east") == "Assessment East"  # not named: its id in words
    assert council.team_name("children_in_need") == "Children In Need"
    view = f.family(f.case(team="front-door-north"))
    assert view["support"]["team"] == "Front Door (North)"


def test_every_family_letter_says_how_to_disagree_and_how_to_give_a_view(catalogue: Catalogue) -> None:
    council = f.council()
    for key, label, view in f.sample_views():
        if key not in FAMILY_KEYS:
            continue
        text = catalogue.render(key, view).text
        assert council.challenge in text and council.feedback in text and council.complaints in text, label
        assert "ask for Pat Worker in our Front Door team" in text, label


def test_the_easy_read_decision_letter(catalogue: Catalogue) -> None:
    person = f.household_member(easy_read=True)
    letter = catalogue.render(
        "family_decision_easy_read", f.family(f.case(decision="early_help", household=[person]))
    )
    text = letter.text
    assert "We have decided that our early help team can help your family." in text
    assert "Early help is your choice." in text and "font-size: 14pt" in letter.html
    nfa = catalogue.render("family_decision_easy_read", f.family(f.case(decision="nfa"))).text
    assert "We have decided that you do not need a social worker." in nfa


def test_dates_in_letters_are_the_councils_local_dates(catalogue: Catalogue) -> None:
    late = f.case(
        referral_at=datetime(2026, 3, 31, 23, 30, tzinfo=UTC),  # 00:30 on 1 April, BST
        closed_at=datetime(2026, 10, 24, 23, 15, tzinfo=UTC),
    )  # 00:15 on 25 October, BST
    family = catalogue.render("family_closing_letter", f.family(late)).text
    assert "On 1 April 2026, Test Primary School contacted us" in family
    assert "on 25 October 2026" in family and "31 March" not in family and "24 October" not in family
    referrer = catalogue.render("referrer_acknowledgement", f.referrer(late)).text
    assert "on 1 April 2026 about" in referrer
    winter = f.case(referral_at=datetime(2026, 1, 31, 23, 30, tzinfo=UTC))  # GMT: still 31 January
    assert "On 31 January 2026," in catalogue.render("family_closing_letter", f.family(winter)).text
