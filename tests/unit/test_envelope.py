"""Whether a name and address fit the envelope window (letters/envelope.py): seven lines of 38
characters, wrapped at spaces, the "Private and confidential" line of a family letter counted."""

from __future__ import annotations

from letters.envelope import LINE_CHARS, WINDOW_LINES, misfit, window_lines


def test_the_window_shows_the_marking_the_name_the_organisation_and_the_address() -> None:
    recipient = {
        "name": "Sam Safeguard",
        "school": "Test Primary",
        "address_lines": ["School Lane", "EX1 3CC"],
    }
    assert window_lines(recipient, marked=False) == [
        "Sam Safeguard",
        "Test Primary",
        "School Lane",
        "EX1 3CC",
    ]
    family = {"name": "Alex Parent", "address_lines": ["1 Test Street", "EX1 2BB"]}
    assert window_lines(family, marked=True) == [
        "Private and confidential",
        "Alex Parent",
        "1 Test Street",
        "EX1 2BB",
    ]


def test_an_ordinary_address_fits() -> None:
    assert (
        misfit(
            [
                "Private and confidential",
                "Alex Parent",
                "Flat 12, Westminster Bridge House",
                "1 Road",
                "Example Town",
                "EX1 2BB",
            ]
        )
        is None
    )
    assert misfit(["x" * LINE_CHARS] * WINDOW_LINES) is None  # exactly full


def test_too_many_lines_do_not_fit() -> None:
    lines = [
        "Private and confidential",
        "Alex Parent",
        "Flat 3",
        "Block B",
        "Tower House",
        "1 Long Road",
        "Example Town",
        "EX1 2BB",
    ]
    assert misfit(lines) == (
        "the name and address take 8 lines of at most 38 characters; the envelope window shows 7"
    )


def test_a_long_line_wraps_and_counts_as_the_lines_it_takes() -> None:
    school = "St Bartholomew's Church of England Voluntary Aided Primary School and Nursery"  # 3 lines
    assert misfit(["Sam Safeguard", school, "School Lane", "EX1 3CC"]) is None
    crowded = ["Private and confidential", "Sam Safeguard", school, "School Lane", "Example", "EX1 3CC"]
    assert misfit(crowded) == (
        "the name and address take 8 lines of at most 38 characters; the envelope window shows 7"
    )


def test_a_word_wider_than_the_window_does_not_fit() -> None:
    assert misfit(["Alex " + "W" * 39, "EX1 2BB"]) == (
        "a word of 39 characters is wider than the envelope window (at most 38 on a line)"
    )
