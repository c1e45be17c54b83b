"""The audit draw: reproducible, stratified by team, proportional, never more than a team has."""

from __future__ import annotations

import pytest

from workflow.audit_sample import SAMPLE_SIZE, draw, order, shares


def test_the_same_month_always_draws_the_same_cases() -> None:
    counts = {"front-door": 40, "front-door-north": 12}
    assert draw(counts, "2026-10") == draw(dict(reversed(counts.items())), "2026-10")
    assert draw(counts, "2026-10") != draw(counts, "2026-09")  # another month, another draw


def test_shares_are_proportional_by_largest_remainder_and_add_up_to_the_size() -> None:
    assert shares({"a": 30, "b": 10}) == {"a": 15, "b": 5}
    # One each first, then 18 in proportion to 24 and 4 others: 15.43 and 2.57, the spare to b.
    assert shares({"a": 25, "b": 5}) == {"a": 16, "b": 4}
    for counts in ({"a": 7, "b": 50, "c": 13}, {"a": 100, "b": 100, "c": 1}, {"x": 21}):
        given = shares(counts)
        assert sum(given.values()) == SAMPLE_SIZE
        total = sum(counts.values())
        for team, share in given.items():
            assert abs(share - SAMPLE_SIZE * counts[team] / total) < 2


def test_every_team_with_cases_gets_one_and_none_more_than_it_has() -> None:
    given = shares({"big": 98, "small": 1, "tiny": 1, "empty": 0})
    assert given == {"big": 18, "small": 1, "tiny": 1}
    assert shares({"a": 3, "b": 2}) == {"a": 3, "b": 2}  # fewer than 20: all of them
    many = {f"t{n:02d}": 1 for n in range(25)}
    assert shares(many) == dict.fromkeys(many, 1)  # more teams than 20: one each still
    for team, positions in draw({"a": 3, "b": 40}, "2026-10").items():
        assert len(positions) == len(set(positions))
        assert all(0 <= p < {"a": 3, "b": 40}[team] for p in positions)


def test_another_teams_cases_never_change_a_teams_order() -> None:
    before = draw({"a": 30, "b": 30}, "2026-10")
    after = draw({"a": 30, "b": 31}, "2026-10")
    assert before["a"] == after["a"]
    # A share that moves takes more or fewer from the front of the same order.
    small, large = draw({"a": 30, "b": 90}, "2026-10")["a"], draw({"a": 30, "b": 10}, "2026-10")["a"]
    assert set(small) <= set(large) and set(large) <= set(order("2026-10", "a", 30)[: len(large)])


def test_a_negative_size_is_refused() -> None:
    with pytest.raises(ValueError):
        shares({"a": 1}, -1)
