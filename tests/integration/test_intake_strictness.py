"""Input strictness through the real intake (issue 8, points 8 and 9), on SQLite and PostgreSQL:
every line accepted or rejected by its number and kept, across batch boundaries; probes refused
with a reason while the lines after them are taken; warnings that accept and say so."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from config.wiring import Runtime
from services import intake
from services.actors import SYSTEM
from tests.factories import (
    MovableClock,
    case_view,
    event,
    history_of,
    import_events,
    import_staff,
    instant,
    jsonl,
    letter_runtime,
    letters_of,
    person,
    referral,
    staff_row,
    sweep_and_deliver,
)
from workflow import limits
from workflow.errors import ImportFailed
from workflow.model import ReceivedEvent

NOW = "2026-03-20"


def received(rt: Runtime) -> list[ReceivedEvent]:
    with rt.db.transaction() as session:
        return list(session.scalars(select(ReceivedEvent).order_by(ReceivedEvent.line_no, ReceivedEvent.id)))


def line(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode() + b"\n"


def import_bytes(rt: Runtime, data: bytes, source: str = "probes.jsonl") -> intake.ImportReport:
    return intake.import_stream(rt, SYSTEM, io.BytesIO(data), source, instant(NOW))


def test_probes_are_rejected_by_line_with_a_reason_and_the_lines_after_them_taken(runtime: Runtime) -> None:
    decision = event("decision.made", "C1", "2026-03-03", outcome="assessment")
    probes = [
        b'{"id": "bad-utf8", "case": "C1", "name": "caf\xe9"}\n',
        b'{"id": "nul\x00", "case": "C1"}\n',
        b"[" * 100_000 + b"]" * 100_000 + b"\n",
        b'{"id": "big", "outbox": ' + b"9" * 5000 + b"}\n",
        line(event("decision.made", "C1", "0001-01-01T00:30:00+01:00", outcome="nfa")),
        line(event("decision.made", "C1", "9999-12-31T23:30:00-01:00", outcome="nfa")),
        line(event("decision.made", "C" * 65, "2026-03-03", outcome="nfa")),
        line(referral("C2", "2026-03-02", household=[person(address="1 Long Road, " * 80)])),
        b'{"id": "twice", "id": "again"}\n',
        line(event("strategy.held", "C1", "2026-03-03", icpc_required="yes")),
        line({**decision, "at": 1772532000}),
    ]
    data = b"\xef\xbb\xbf" + line(referral("C1", "2026-03-02")) + b"".join(probes) + line(decision)
    report = import_bytes(runtime, data)

    assert report.accepted == 2 and len(report.rejected) == len(probes)
    assert [r.split(":")[0] for r in report.rejected] == [f"line {n}" for n in range(2, 2 + len(probes))]
    reasons = dict(zip(range(2, 2 + len(probes)), report.rejected, strict=True))
    assert reasons[2] == "line 2: field (line): is not UTF-8 text (byte 0xE9 at byte 46)"
    assert "raw control character U+0000" in reasons[3]
    assert "nested more than" in reasons[4]
    assert "more than 15 digits" in reasons[5]
    assert "year 1 is outside" in reasons[6] and "year 9999 is outside" in reasons[7]
    assert reasons[8] == "line 8: field case: String should have at most 64 characters"
    assert reasons[9] == "line 9: field household.0.address: String should have at most 320 characters"
    assert "the key 'id' appears twice" in reasons[10]
    assert "icpc_required: must be a boolean" in reasons[11]
    assert "field at: must be an ISO 8601 date-time string" in reasons[12]

    rows = received(runtime)
    assert [r.line_no for r in rows] == list(range(1, len(probes) + 3))
    assert [r.status for r in rows] == ["accepted", *["rejected"] * len(probes), "accepted"]
    assert rows[1].raw == '{"id": "bad-utf8", "case": "C1", "name": "caf\\xe9"}'  # kept, escaped
    assert rows[2].raw == '{"id": "nul\\x00", "case": "C1"}'
    assert rows[3].raw.startswith("[[[[")
    assert rows[7].case_ref == "C" * 64  # shown cut to its column
    assert case_view(runtime, "C1", NOW)["state"] == "assessment"


def test_a_line_longer_than_the_limit_is_one_rejected_line(runtime: Runtime) -> None:
    huge = b'{"id": "' + b"x" * (2 * limits.LINE_BYTES) + b'"}\n'
    data = line(referral("C1", "2026-03-02")) + huge + line(referral("C2", "2026-03-02"))
    report = import_bytes(runtime, data)
    assert report.accepted == 2
    assert report.rejected == [
        f"line 2: field (line): is longer than {limits.LINE_BYTES} bytes "
        "(only its first 4096 characters are kept)"
    ]
    assert [(r.line_no, len(r.raw)) for r in received(runtime)][1] == (2, 4096)


def test_no_batch_boundary_loses_or_repeats_a_line(runtime: Runtime) -> None:
    """Two and a quarter batches of lines; bad lines straddle both boundaries, and a decision at
    the last line of the first batch whose referral is the next line (the next batch) is taken on
    the retry."""
    size = intake.BATCH
    total = 2 * size + size // 4
    bad = {
        size - 1: b"not json\n",
        size: line(event("decision.made", "B", "2026-03-03", outcome="nfa")),
        size + 1: line(referral("B", "2026-03-02")),
        2 * size: b"\xff\xfe\n",
        2 * size + 1: b'{"a": 1, "a": 2}\n',
    }
    lines = [bad.get(n) or line(referral(f"C{n}", "2026-03-02", id=f"r{n}")) for n in range(1, total + 1)]
    report = import_bytes(runtime, b"".join(lines), "batches.jsonl")

    rows = received(runtime)
    assert [r.line_no for r in rows] == list(range(1, total + 1))  # each line once, none lost
    rejected = {r.line_no for r in rows if r.status == "rejected"}
    assert rejected == {size - 1, 2 * size, 2 * size + 1}
    assert [r.split(":")[0] for r in report.rejected] == [
        f"line {size - 1}",
        f"line {2 * size}",
        f"line {2 * size + 1}",
    ]
    assert (report.accepted, report.retried_accepted) == (total - 4, 1)
    assert case_view(runtime, "B", NOW)["state"] == "referral_nfa"

    again = import_bytes(runtime, b"".join(lines), "batches.jsonl")  # the same file: all duplicates
    assert (again.accepted, len(again.duplicates), len(again.rejected)) == (0, total - 3, 3)


class FailingStream(io.BytesIO):
    """Input that fails to read after ``good`` lines, as a disk or a pipe can."""

    def __init__(self, data: bytes, good: int) -> None:
        super().__init__(data)
        self.left = good

    def readline(self, size: int | None = -1) -> bytes:
        if self.left == 0:
            raise OSError(5, "Input/output error")
        self.left -= 1
        return super().readline(size)


def test_an_import_that_cannot_read_on_says_how_far_it_got_and_a_rerun_ends_it(runtime: Runtime) -> None:
    size = intake.BATCH
    total = size + size // 2
    data = b"".join(line(referral(f"C{n}", "2026-03-02", id=f"r{n}")) for n in range(1, total + 1))
    with pytest.raises(ImportFailed) as caught:
        intake.import_stream(runtime, SYSTEM, FailingStream(data, size + size // 4), "f.jsonl", instant(NOW))
    assert str(caught.value) == (
        f"the import stopped after line {size}: the input could not be read (Input/output error); lines "
        f"1–{size} are kept, and importing the same input again takes the rest (lines already taken are "
        "skipped as duplicates)"
    )
    assert len(received(runtime)) == size  # whole batches only: the lines read after the first are not
    rerun = import_bytes(runtime, data, "f.jsonl")
    assert (rerun.accepted, len(rerun.duplicates)) == (total - size, size)
    assert [r.line_no for r in received(runtime)] == list(range(1, total + 1))


def test_standard_input_lines_as_text_are_taken_the_same_way(runtime: Runtime) -> None:
    lines = [
        "\ufeff" + jsonl(referral("C1", "2026-03-02"))[0],
        "\n",
        '{"id": "x\x00"}\n',
        *jsonl(event("decision.made", "C1", "2026-03-03", outcome="nfa")),
    ]
    report = intake.import_events(runtime, SYSTEM, lines, "<stdin>", instant(NOW))
    assert (report.accepted, len(report.rejected)) == (2, 1)
    assert report.rejected[0].startswith("line 3: field (line): has the raw control character U+0000")
    assert [r.line_no for r in received(runtime)] == [1, 3, 4]  # a blank line is no event


def test_an_over_long_address_is_refused_and_every_later_event_of_the_case_is_taken(runtime: Runtime) -> None:
    """On PostgreSQL a 1,000-character address used to be accepted, and then every later event of
    its case failed to write its letter's row; now the line is refused and the case goes on."""
    long = referral("C1", "2026-03-02", id="r-long", household=[person(address="A" * 1000)])
    first = import_events(runtime, long, now=NOW)
    assert first.rejected == ["line 1: field household.0.address: String should have at most 320 characters"]
    fixed = import_events(
        runtime,
        referral("C1", "2026-03-02", id="r-long", household=[person(address="A" * limits.ADDRESS)]),
        event("decision.made", "C1", "2026-03-03", outcome="assessment"),
        event("worker.allocated", "C1", "2026-03-03", worker="W1"),
        event("household.updated", "C1", "2026-03-04", household=[person(address="B" * limits.ADDRESS)]),
        event("assessment.completed", "C1", "2026-03-10", outcome="nfa"),
        event("case.closed", "C1", "2026-03-11", reason="RC8"),
        now=NOW,
    )
    assert (fixed.accepted, fixed.rejected) == (6, [])
    assert case_view(runtime, "C1", NOW)["state"] == "closed"


@pytest.fixture
def letters_rt(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = letter_runtime(database_url, tmp_path / "var", MovableClock(datetime(2026, 3, 3, 10, tzinfo=UTC)))
    yield rt
    rt.close()


def test_values_at_every_limit_are_stored_and_their_letters_sent(letters_rt: Runtime) -> None:
    """The longest value of every field goes through intake, the case, its letters' rows and a
    send, on both databases: a limit that does not fit where its value goes fails here."""
    pid, eid, ref = "P" * limits.PERSON_ID, "e" * limits.EVENT_ID, "C" * limits.CASE_REF
    name, address = "N" * limits.NAME, "A" * (limits.ADDRESS - 10) + "\nAB1 2CD"
    email = "r" * 64 + "@" + "s" * 63 + "." + "example"
    school = {"name": name, "dsl_name": name, "email": email, "address": address}
    events = [
        referral(
            ref,
            "2026-03-02T09:00:00+00:00",
            id=eid,
            team="t" * limits.TEAM,
            child={"name": name, "dob": "2016-05-01", "school": school},
            referrer={"source": "2A", "organisation": name, "name": name, "email": email, "address": address},
            household=[
                person(pid, name=name, relationship="r" * limits.CODE, address=address),
                person("P2", name=name, email=email, preferred_channel="email"),
            ],
        ),
        event("worker.allocated", ref, "2026-03-02T09:30:00+00:00", worker="w" * limits.STAFF_ID),
        event("decision.made", ref, "2026-03-02T10:00:00+00:00", id="d" * limits.EVENT_ID, outcome="nfa"),
    ]
    report = import_events(letters_rt, *events, now="2026-03-03T10:00:00+00:00")
    assert (report.accepted, report.rejected) == (3, [])
    made = letters_of(letters_rt, ref)
    assert {m.recipient for m in made} >= {pid, "P2", "referrer"}
    outcomes = sweep_and_deliver(letters_rt, datetime(2026, 3, 3, 10, tzinfo=UTC))
    assert outcomes and set(outcomes.values()) <= {"sent", "held"}, outcomes


# Point 9: warnings accept the event and say so, in the summary and in the case history.


def test_a_child_of_18_or_over_at_referral_is_accepted_with_a_warning(runtime: Runtime) -> None:
    adult = {**referral("C1", "2026-03-02")["child"], "dob": "2008-03-02"}  # 18 that very day
    young = {**adult, "dob": "2008-03-03"}  # 17 until tomorrow
    report = import_events(
        runtime, referral("C1", "2026-03-02", child=adult), referral("C2", "2026-03-02", child=young), now=NOW
    )
    assert (report.accepted, report.rejected) == (2, [])
    assert report.warnings == [
        "line 1: case C1: the child is 18 or over on the referral date; accepted: check the date of birth"
    ]
    (warned,) = history_of(runtime, "C1", "intake.warning")
    assert warned.detail == {"code": "adult_at_referral"}
    assert history_of(runtime, "C2", "intake.warning") == []


def test_no_warning_about_teams_or_workers_before_a_staff_directory_exists(runtime: Runtime) -> None:
    report = import_events(
        runtime,
        referral("C1", "2026-03-02", team="nowhere"),
        event("worker.allocated", "C1", "2026-03-03", worker="nobody"),
        now=NOW,
    )
    assert (report.accepted, report.warnings) == (2, [])


def test_an_unknown_team_or_worker_is_accepted_with_a_warning(runtime: Runtime) -> None:
    import_staff(runtime)  # the front-door team: SM1, TM1, W1, W2
    import_staff(runtime, staff_row("W9", team="north"))
    report = import_events(
        runtime,
        referral("C1", "2026-03-02", team="front-dor"),  # misspelt
        event("worker.allocated", "C1", "2026-03-03", worker="W7"),
        referral("C2", "2026-03-02", team="north"),
        event("worker.allocated", "C2", "2026-03-03", worker="W1"),
        now=NOW,
    )
    assert (report.accepted, report.rejected) == (4, [])
    assert report.warnings == [
        "line 1: case C1: team 'front-dor' is not in the staff directory; accepted",
        "line 2: case C1: worker 'W7' is not in the staff directory; accepted",
    ]
    details = [h.detail for h in history_of(runtime, "C1", "intake.warning")]
    assert details == [
        {"code": "unknown_team", "team": "front-dor"},
        {"code": "unknown_worker", "worker": "W7"},
    ]
    assert case_view(runtime, "C1", NOW)["worker"] == "W7"


def test_a_warning_about_an_event_taken_on_retry_names_its_line_and_file(runtime: Runtime) -> None:
    import_staff(runtime)
    early = event("worker.allocated", "C1", "2026-03-03", worker="W7")
    import_events(runtime, early, now=NOW, source="a.jsonl")
    later = import_events(runtime, referral("C1", "2026-03-02"), now=NOW, source="b.jsonl")
    assert later.warnings == [
        "line 1 of a.jsonl (on retry): case C1: worker 'W7' is not in the staff directory; accepted"
    ]
