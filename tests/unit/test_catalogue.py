"""The shipped letter catalogue: it checks clean, renders every letter, and tells each audience only
what it may know."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest

from letters.catalogue import Catalogue, RenderedLetter
from letters.rendering import RenderError
from tests import letter_factories as f

SAMPLES = f.sample_views()
FAMILY_KEYS = (
    "family_decision",
    "family_decision_easy_read",
    "family_closing_letter",
    "family_closing_letter_easy_read",
)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue().load()


@pytest.fixture(scope="module")
def rendered(catalogue: Catalogue) -> dict[tuple[str, str], RenderedLetter]:
    return {(key, label): catalogue.render(key, view) for key, label, view in SAMPLES}


def test_the_shipped_catalogue_checks_clean() -> None:
    catalogue = Catalogue()
    assert [str(problem) for problem in catalogue.check()] == []
    assert catalogue.keys() == sorted(
        [
            "referrer_acknowledgement",
            "referrer_outcome",
            "referrer_closure_notice",
            "school_worker_involved",
            "school_involvement_ended",
            "family_decision",
            "family_decision_easy_read",
            "family_closing_letter",
            "family_closing_letter_easy_read",
        ]
    )


def test_every_entry_is_complete(catalogue: Catalogue) -> None:
    audiences = {entry.key: entry.audience for entry in catalogue.entries()}
    assert audiences["school_worker_involved"] == "school"
    assert {audiences[key] for key in FAMILY_KEYS} == {"family"}
    assert audiences["referrer_outcome"] == audiences["referrer_acknowledgement"] == "referrer"
    for entry in catalogue.entries():
        assert entry.version >= 1 and set(entry.channels) <= {"email", "post"}
        assert entry.description and entry.subject
        assert not any(field.startswith("child.") for field in re.findall(r"[a-z_.]+", entry.subject))


def test_every_template_is_sampled(catalogue: Catalogue) -> None:
    assert {key for key, _, _ in SAMPLES} == set(catalogue.keys())


@pytest.mark.parametrize(("key", "label", "view"), SAMPLES, ids=[f"{k}-{label}" for k, label, _ in SAMPLES])
def test_every_template_renders(catalogue: Catalogue, key: str, label: str, view: dict[str, Any]) -> None:
    letter = catalogue.render(key, view)
    entry = catalogue.entry(key)
    assert (letter.key, letter.version) == (key, entry.version)
    assert letter.content_hash == hashlib.sha256((letter.text + letter.html).encode()).hexdigest()
    council = f.council()
    for body in (letter.text, letter.html):
        assert council.name in body
        assert council.front_door_phone in body and council.out_of_hours_phone in body
        assert "CL-2026-0042" in body and "16 March 2026" in body
        assert "None" not in body
    assert view["recipient"]["name"] in letter.text
    assert '<html lang="en">' in letter.html and "<title>" in letter.html
    assert len(re.findall(r"<h1>", letter.html)) == 1 and "<h2>" in letter.html
    assert "size: A4" in letter.html and '"DejaVu Sans", "Noto Sans"' in letter.html
    assert "<img" not in letter.html  # no logo configured: the name is text, never a picture


@pytest.mark.parametrize(("key", "label", "view"), SAMPLES, ids=[f"{k}-{label}" for k, label, _ in SAMPLES])
def test_no_subject_names_the_child(catalogue: Catalogue, key: str, label: str, view: dict[str, Any]) -> None:
    subject = catalogue.render(key, view).subject
    assert f.CHILD not in subject and f.CHILD.split()[0] not in subject
    assert "\n" not in subject and len(subject) < 120


def test_no_family_letter_names_a_member_of_the_public(
    rendered: dict[tuple[str, str], RenderedLetter],
) -> None:
    family = [(label, letter) for (key, label), letter in rendered.items() if key in FAMILY_KEYS]
    public = [letter for label, letter in family if "public" in label]
    professional = [letter for label, letter in family if "professional" in label]
    assert len(public) == len(professional) == 20
    for letter in public:
        for body in (letter.text, letter.html, letter.subject):
            assert f.NEIGHBOUR not in body and "Neighbour" not in body
        assert "we were given information" in letter.text or "we were told about worries" in letter.text
    for letter in professional:  # the check can fail: a professional's organisation is named
        assert "Test Primary School" in letter.text
        assert f.PROFESSIONAL not in letter.text  # the person, never: only the organisation


def test_family_letters_explain_and_say_where_to_get_help(
    rendered: dict[tuple[str, str], RenderedLetter],
) -> None:
    council = f.council()
    for (key, _), letter in rendered.items():
        if key not in FAMILY_KEYS:
            continue
        text = letter.text
        assert "Why we were involved" in text and "What we found" in text and "What we decided" in text
        assert "assessment" in text  # what_happened: what the council found, in plain words
        assert council.complaints in text and council.records in text
        assert council.front_door_phone in text and council.out_of_hours_phone in text
        assert f.PARENT in text and "Rowan" in text
        assert f.CHILD not in text  # the family letter uses the child's first name only


def test_closing_letters_have_a_variant_for_every_reason(
    rendered: dict[tuple[str, str], RenderedLetter],
) -> None:
    decided = {}
    for variant in f.VARIANT_REASONS:
        text = rendered[("family_closing_letter", f"{variant} professional")].text
        decided[variant] = text.split("What we decided")[1].split("---\n\n", 1)[1].split("\n\n")[0]
    assert len(set(decided.values())) == len(decided), decided
    assert "another council" in decided["moved_away"] and "adult social care" in decided["adult_services"]
    assert "court order" in decided["court_order"] and "adopted" in decided["adopted"]
    assert "no further action" in decided["no_further_action"]


def test_a_childs_death_is_written_with_care(rendered: dict[tuple[str, str], RenderedLetter]) -> None:
    died = rendered[("family_closing_letter", "died professional")].text
    assert "We are very sorry for the death of Rowan" in died
    assert "CLOSING ROWAN'S RECORD" in died and "WE HAVE FINISHED OUR WORK" not in died
    assert "If you are worried about your child" not in died and "call 999" not in died.split("----")[0]
    assert "bereavement" in died
    for variant in f.VARIANT_REASONS:
        if variant != "died":
            other = rendered[("family_closing_letter", f"{variant} professional")].text
            assert "death" not in other and "sorry" not in other
    easy = rendered[("family_closing_letter_easy_read", "died public")].text
    assert "We are very sorry that Rowan has died." in easy


def test_easy_read_puts_one_short_idea_on_each_line(rendered: dict[tuple[str, str], RenderedLetter]) -> None:
    council = f.council()
    from_config = {
        council.complaints,
        council.records,
        council.early_help,
        council.challenge,
        council.feedback,
    }
    for (key, _), letter in rendered.items():
        if key not in ("family_closing_letter_easy_read", "family_decision_easy_read"):
            continue
        body = letter.text.split("Dear ", 1)[1].split("\nFrom\n", 1)[0]
        for line in body.splitlines():
            if line in from_config:
                continue
            assert len(line.split()) <= 12, line
            assert line.count(". ") == 0, line  # one sentence a line
        assert "font-size: 14pt" in letter.html


def test_school_is_told_the_minimum(rendered: dict[tuple[str, str], RenderedLetter]) -> None:
    letter = rendered[("school_worker_involved", "with worker")]
    assert f.CHILD in letter.text and "1 May 2016" in letter.text
    assert f.WORKER in letter.text and f.SCHOOL_LEAD in letter.text
    for body in (letter.text, letter.html):
        for secret in (
            f.PARENT,
            "1 Test Street",
            f.PROFESSIONAL,
            "no further action",
            "assessment",
            "early help",
        ):
            assert secret not in body
    assert "The child's social worker is in our Front Door team." in (  # the team's name, not its id
        rendered[("school_worker_involved", "no worker")].text
    )


def test_a_member_of_the_public_gets_an_acknowledgement_only(
    catalogue: Catalogue, rendered: dict[tuple[str, str], RenderedLetter]
) -> None:
    public = rendered[("referrer_acknowledgement", "public")].text
    assert "we cannot tell you what we decide" in public and "1 May 2016" not in public
    assert (
        "We will write to you with our decision"
        in rendered[("referrer_acknowledgement", "professional")].text
    )
    view = f.referrer(f.neighbour_case())
    for key in ("referrer_outcome", "referrer_closure_notice"):
        with pytest.raises(
            RenderError, match=rf"template {key}: field (referral\.professional|decision\.key|child\.dob)"
        ):
            catalogue.render(key, view)
    # Even with every other field present, the professional guard holds the letter.
    forged = f.with_override(f.referrer(f.case()), "referral.professional", False)
    with pytest.raises(RenderError, match=r"referral\.professional must be one of: True"):
        catalogue.render("referrer_outcome", forged)


def test_a_professional_is_told_the_reason_below_threshold(
    rendered: dict[tuple[str, str], RenderedLetter],
) -> None:
    council = f.council()
    nfa = rendered[("referrer_outcome", "nfa")].text
    assert "Why we made this decision" in nfa and council.early_help in nfa and "1 May 2016" in nfa
    assessment = rendered[("referrer_outcome", "assessment")].text
    assert "a social worker will carry out an assessment" in assessment
    assert "Why we made this decision" not in assessment and council.early_help not in assessment


def _canaried(view: Any, path: str = "") -> Any:
    if isinstance(view, dict):
        return {key: _canaried(value, f"{path}.{key}".lstrip(".")) for key, value in view.items()}
    if isinstance(view, str) and view:
        return f"CANARY[{path}]"
    return view


@pytest.mark.parametrize(
    ("key", "label", "view"), SAMPLES[:12], ids=[f"{k}-{lb}" for k, lb, _ in SAMPLES[:12]]
)
def test_only_declared_fields_reach_the_letter(
    catalogue: Catalogue, key: str, label: str, view: dict[str, Any]
) -> None:
    entry = catalogue.entry(key)
    canaried = _canaried(view)
    for path in entry.choices:  # keep the guarded values real
        canaried = f.with_override(canaried, path, _get(view, path))
    letter = catalogue.render(key, canaried)
    seen = set(re.findall(r"CANARY\[([a-z_.]+)\]", letter.text + letter.html + letter.subject))
    assert seen, "the canaries must show where fields are printed"
    assert seen <= set(entry.paths)
    context = catalogue.context(entry, view)
    assert set(context) <= {path.split(".")[0] for path in entry.paths}


def _get(view: dict[str, Any], path: str) -> Any:
    value: Any = view
    for part in path.split("."):
        value = value[part]
    return value


def test_html_escapes_what_text_keeps(catalogue: Catalogue) -> None:
    name = "<script>alert('x')</script> & Co"
    view = f.with_override(f.family(f.case()), "recipient.name", name)
    letter = catalogue.render("family_closing_letter", view)
    assert "<script>" not in letter.html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Co" in letter.html
    assert f"Dear {name}," in letter.text


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        ("involvement.what_happened", ..., "field involvement.what_happened is missing from the view"),
        ("involvement.what_happened", "", "field involvement.what_happened is empty in the view"),
        ("closure.closed_on", "", "field closure.closed_on is empty in the view"),
        ("council.complaints", None, "field council.complaints is empty in the view"),
        ("recipient", ..., "field recipient.name is missing from the view"),
        ("closure.variant", "shipwrecked", "field closure.variant must be one of: no_further_action"),
    ],
)
def test_a_missing_field_holds_the_letter(catalogue: Catalogue, path: str, value: Any, problem: str) -> None:
    view = f.with_override(f.family(f.case()), path, value)
    with pytest.raises(RenderError) as caught:
        catalogue.render("family_closing_letter", view)
    assert str(caught.value).startswith("template family_closing_letter: ")
    assert problem in str(caught.value)


def test_an_optional_field_may_be_empty(catalogue: Catalogue) -> None:
    view = f.with_override(f.family(f.case()), "support.worker_name", None)
    view = f.with_override(view, "recipient.address_lines", [])
    letter = catalogue.render("family_closing_letter", view)
    assert "call us and ask for our Front Door team." in letter.text and "None" not in letter.text
    absent = f.with_override(f.school(f.case()), "contact.worker_name", ...)
    assert "Front Door team" in catalogue.render("school_worker_involved", absent).text


def test_render_refuses_an_unknown_key(catalogue: Catalogue) -> None:
    with pytest.raises(RenderError, match="no letter template 'love_letter'"):
        catalogue.render("love_letter", f.family(f.case()))
