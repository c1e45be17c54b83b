"""The one re-referral rule: within 12 calendar months of the previous referral (the census's)."""

from datetime import date

from workflow.episodes import is_re_referral


def test_within_twelve_calendar_months_of_the_previous_referral_counts() -> None:
    assert is_re_referral(date(2026, 3, 2), date(2026, 6, 1))
    assert is_re_referral(date(2026, 3, 2), date(2027, 3, 2))  # the same day a year on still counts
    assert not is_re_referral(date(2026, 3, 2), date(2027, 3, 3))


def test_a_previous_referral_on_29_february_counts_to_28_february() -> None:
    assert is_re_referral(date(2028, 2, 29), date(2029, 2, 28))
    assert not is_re_referral(date(2028, 2, 29), date(2029, 3, 1))
