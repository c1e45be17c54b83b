"""Input strictness (issue 8, point 8): probes that used to crash an import are refused with a
reason; limits, control characters, strict JSON types, blank optional values, email addresses."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from messaging.outbox import OutboxMessage
from tests.factories import event, person, referral
from workflow import limits
from workflow.errors import MalformedEvent
from workflow.events import ReferralReceived, Referrer, parse_line, validate_event
from workflow.jsonlines import decode, read_lines, showable
from workflow.model import Case, ReceivedEvent
from workflow.staff import Staff

AT = "2026-03-02T09:30:00+00:00"
REF = referral("C1", AT)
DEC = event("decision.made", "C1", AT, outcome="nfa")


def refused(data: dict[str, Any]) -> MalformedEvent:
    with pytest.raises(MalformedEvent) as caught:
        validate_event(data)
    return caught.value


def refused_line(raw: str) -> MalformedEvent:
    with pytest.raises(MalformedEvent) as caught:
        parse_line(raw)
    assert caught.value.field == "(line)"
    return caught.value


# Lines: what Python's decoder would crash on, take silently, or spend seconds on.


def test_a_nul_byte_is_refused_by_its_column() -> None:
    assert "control character U+0000 at column 10" in refused_line('{"id": "e\x001"}').rule


def test_a_raw_control_character_other_than_tab_is_refused() -> None:
    assert "U+000D" in refused_line('{"id":\r"e1"}').rule
    assert parse_line('{"id":\t"e1"}') == {"id": "e1"}  # tab is JSON whitespace


def test_a_hundred_thousand_nested_arrays_are_refused_without_recursing() -> None:
    rule = refused_line("[" * 100_000 + "]" * 100_000).rule
    assert rule == f"objects and arrays are nested more than {limits.NESTING} deep"
    within_recursion = json.dumps({**DEC, "outcome": json.loads("[" * 50 + "]" * 50)})
    assert "nested more than" in refused_line(within_recursion).rule


def test_a_five_thousand_digit_number_is_refused() -> None:
    rule = refused_line(json.dumps(DEC)[:-1] + ', "outbox": ' + "9" * 5000 + "}").rule
    assert rule == f"a number has more than {limits.DIGITS} digits"
    assert "more than" in refused_line('{"a": 1.' + "0" * 5000 + "}").rule
    assert "too large" in refused_line('{"a": 1e999}').rule
    assert "NaN is not a JSON number" in refused_line('{"a": NaN}').rule


def test_a_key_twice_in_one_object_is_refused() -> None:
    assert refused_line('{"id": "e1", "id": "e2"}').rule == "the key 'id' appears twice in one object"
    nested = '{"child": {"name": "A", "name": "B"}}'
    assert "'name' appears twice" in refused_line(nested).rule


def test_an_unpaired_surrogate_escape_is_refused() -> None:
    assert "unpaired surrogate" in refused_line('{"id": "\\ud800"}').rule


def test_bytes_that_are_not_utf8_spoil_their_line_only_and_are_kept_escaped() -> None:
    text, problem = decode(b'{"id": "caf\xe9"}\n', first=False)
    assert text == '{"id": "caf\\xe9"}'
    assert problem is not None and problem.rule == "is not UTF-8 text (byte 0xE9 at byte 12)"
    good, none = decode('{"id": "café"}\n'.encode(), first=False)
    assert (good, none) == ('{"id": "café"}', None)


def test_a_byte_order_mark_is_taken_off_the_first_line_only() -> None:
    assert decode(b'\xef\xbb\xbf{"a": 1}\r\n', first=True) == ('{"a": 1}', None)
    second, _ = decode(b'\xef\xbb\xbf{"a": 1}', first=False)
    assert "U+FEFF" not in second and "not valid JSON" in refused_line(second).rule


def test_an_over_long_line_is_read_past_and_refused_with_a_part_kept() -> None:
    huge = b'{"id": "' + b"x" * (3 * limits.LINE_BYTES) + b'"}\n'
    stream = io.BytesIO(huge + b'{"id": "next"}\n')
    first, second = read_lines(stream)
    assert len(first) == limits.LINE_BYTES + 1 and second == b'{"id": "next"}\n'
    kept, problem = decode(first, first=False)
    assert problem is not None and f"is longer than {limits.LINE_BYTES} bytes" in problem.rule
    assert len(kept) == 4096


def test_showable_escapes_what_the_database_cannot_store() -> None:
    assert showable("a\x00b\x1bc\ud800d\te") == "a\\x00b\\x1bc\\ud800d\te"


def test_an_unknown_key_is_named_escaped_and_cut_short() -> None:
    err = refused(parse_line(json.dumps({**DEC, "\u0000" + "k" * 300: 1})))
    assert err.field == "\\x00" + "k" * 59 + "…" and err.rule == "is not a field of decision.made"


# Instants and dates: a conversion to UTC or to local time must not overflow.


@pytest.mark.parametrize(
    "at", ["0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00", "1970-01-01T00:00:00+00:00"]
)
def test_a_timestamp_outside_caseloops_years_is_refused(at: str) -> None:
    err = refused({**DEC, "at": at})
    assert err.field == "at" and "is outside 2000–2099" in err.rule


def test_a_unix_integer_is_not_a_timestamp() -> None:
    err = refused({**DEC, "at": 1772443800})
    assert err.field == "at"
    assert err.rule == "must be an ISO 8601 date-time string with a UTC offset (not a number)"


def test_a_date_of_birth_in_the_future_or_before_1900_is_refused() -> None:
    err = refused({**REF, "child": {**REF["child"], "dob": "2026-03-03"}})
    assert (err.field, err.rule) == ("child.dob", "2026-03-03 is after the event's date: it is in the future")
    born_today = validate_event({**REF, "child": {**REF["child"], "dob": "2026-03-02"}})
    assert isinstance(born_today, ReferralReceived)
    assert "not a plausible year" in refused({**REF, "child": {**REF["child"], "dob": "0001-01-01"}}).rule


# Types are JSON's own: nothing is coerced.


@pytest.mark.parametrize("value", ["yes", "no", "true", 0, 1])
def test_a_boolean_is_true_or_false_only(value: object) -> None:
    err = refused(event("strategy.held", "C1", AT, icpc_required=value))
    assert (err.field, err.rule) == ("icpc_required", "must be a boolean: true or false")


def test_no_number_as_string_nor_string_as_number() -> None:
    failed = event("letter.failed", "C1", AT, outbox="7", duty="d", why="returned")
    assert refused(failed).rule == "must be a whole number (not a string)"
    number = refused({**DEC, "case": 123})
    assert (number.field, number.rule) == ("case", "must be a string")
    assert refused({**REF, "child": {**REF["child"], "dob": 20160501}}).field == "child.dob"


# Limits: from the column a value is stored in, or sane ones; checked before anything is stored.

LONG: list[Any] = [
    pytest.param({**DEC, "id": "e" * (limits.EVENT_ID + 1)}, "id", limits.EVENT_ID, id="id"),
    pytest.param({**DEC, "case": "C" * (limits.CASE_REF + 1)}, "case", limits.CASE_REF, id="case"),
    pytest.param({**REF, "team": "t" * (limits.TEAM + 1)}, "team", limits.TEAM, id="team"),
    pytest.param(
        event("worker.allocated", "C1", AT, worker="w" * (limits.STAFF_ID + 1)),
        "worker",
        limits.STAFF_ID,
        id="worker",
    ),
    pytest.param(
        {**REF, "child": {**REF["child"], "name": "n" * (limits.NAME + 1)}},
        "child.name",
        limits.NAME,
        id="name",
    ),
    pytest.param(
        {**REF, "household": [person(address="a" * 1000)]},
        "household.0.address",
        limits.ADDRESS,
        id="address",
    ),
    pytest.param(
        {**REF, "household": [person("p" * (limits.PERSON_ID + 1))]},
        "household.0.id",
        limits.PERSON_ID,
        id="person-id",
    ),
    pytest.param({**REF, "flags": ["f" * (limits.CODE + 1)]}, "flags.0", limits.CODE, id="flag"),
]


@pytest.mark.parametrize(("data", "field", "limit"), LONG)
def test_a_value_longer_than_its_limit_is_refused(data: dict[str, Any], field: str, limit: int) -> None:
    err = refused(data)
    assert (err.field, err.rule) == (field, f"String should have at most {limit} characters")


def test_the_limits_fit_the_columns_the_values_go_to() -> None:
    def length(model: Any, name: str) -> int:
        return limits.column_length(model, name)

    assert min(length(ReceivedEvent, "claimed_id"), length(OutboxMessage, "source_event")) >= limits.EVENT_ID
    assert length(ReceivedEvent, "case_ref") >= limits.CASE_REF
    assert length(Staff, "id") >= limits.STAFF_ID and length(Staff, "team") >= limits.TEAM
    assert length(OutboxMessage, "address") >= max(limits.ADDRESS, limits.EMAIL)
    assert length(OutboxMessage, "recipient") >= limits.PERSON_ID
    # A letter's key is "duty:event id:person id", the duty a name of the policy (a clock's name).
    assert length(OutboxMessage, "idempotency_key") >= limits.CODE + limits.EVENT_ID + limits.PERSON_ID + 2
    assert length(OutboxMessage, "duty") >= limits.CODE
    assert length(Case, "team") == limits.TEAM


# Text: control characters refused; only an address or a reason spans lines.


@pytest.mark.parametrize(
    ("data", "field", "fragment"),
    [
        pytest.param(
            {**REF, "child": {**REF["child"], "name": "Ann\nSmith"}},
            "child.name",
            "line break",
            id="newline-in-name",
        ),
        pytest.param({**REF, "team": "front\tdoor"}, "team", "control character U+0009", id="tab-in-team"),
        pytest.param(
            {**REF, "child": {**REF["child"], "name": "Ann\u202eSmith"}},
            "child.name",
            "U+202E",
            id="bidi-override",
        ),
        pytest.param(
            {**REF, "household": [person(address="1 Street\x00")]},
            "household.0.address",
            "U+0000",
            id="nul-in-address",
        ),
        pytest.param({**DEC, "id": "e\x1b1"}, "id", "U+001B", id="escape-in-id"),
    ],
)
def test_control_characters_in_text_are_refused(data: dict[str, Any], field: str, fragment: str) -> None:
    err = refused(data)
    assert err.field == field and fragment in err.rule


def test_an_address_and_a_reason_may_span_lines() -> None:
    parsed = validate_event({**REF, "household": [person(address="1 Test Street\r\nBorough\nAB1 2CD")]})
    assert isinstance(parsed, ReferralReceived)
    assert parsed.household[0].address == "1 Test Street\nBorough\nAB1 2CD"
    words = "In hospital.\nBack soon."
    paused = validate_event(event("clock.paused", "C1", AT, clock="assessment", reason=words))
    assert paused.reason == words  # type: ignore[union-attr]


def test_blank_optional_values_are_absent_and_blank_required_ones_refused() -> None:
    public = {"source": "1D", "organisation": "", "name": "  ", "email": "", "address": ""}
    parsed = validate_event({**REF, "referrer": public})
    assert isinstance(parsed, ReferralReceived)
    assert parsed.referrer == Referrer(source="1D")
    school = {**REF["child"]["school"], "email": " "}
    assert validate_event({**REF, "child": {**REF["child"], "school": school}}).child.school.email is None  # type: ignore[union-attr]
    assert validate_event({**REF, "household": [person(email="")]}).household[0].email is None  # type: ignore[union-attr]
    assert refused({**REF, "team": "  "}).rule == "String should have at least 1 character"
    assert refused({**REF, "child": {**REF["child"], "name": ""}}).field == "child.name"


# Email addresses: one plain ASCII address, nothing a header could be split on.


@pytest.mark.parametrize(
    ("address", "fragment"),
    [
        pytest.param("ref@school.example\r\nBcc: all@example.org", "line break", id="crlf-injection"),
        pytest.param("a@school.example, b@school.example", "must be one email address", id="two"),
        pytest.param("a@school.example,b", "the part after @ is not a domain name", id="comma"),
        pytest.param("a@school.example b@school.example", "must be one email address", id="two-spaced"),
        pytest.param("Ann Ref <ref@school.example>", "must be one email address", id="display-name"),
        pytest.param("ref.school.example", "must be one email address", id="no-at"),
        pytest.param("ref@localhost", "not a domain name", id="no-dot"),
        pytest.param("ref@school..example", "not a domain name", id="empty-label"),
        pytest.param(".ref@school.example", "not a plain mailbox name", id="leading-dot"),
        pytest.param("józef@szkoła.example", "internationalised (non-ASCII) address", id="non-ascii"),
    ],
)
def test_an_email_address_that_cannot_be_sent_is_refused(address: str, fragment: str) -> None:
    err = refused({**REF, "referrer": {"source": "2A", "email": address}})
    assert err.field == "referrer.email" and fragment in err.rule, err.rule


@pytest.mark.parametrize("address", ["ref@school.example", "o'brien+front-door@mail.school.example.org"])
def test_a_plain_address_is_taken(address: str) -> None:
    parsed = validate_event({**REF, "referrer": {"source": "2A", "email": f" {address} "}})
    assert parsed.referrer.email == address  # type: ignore[union-attr]
