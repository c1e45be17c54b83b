"""The monthly audit sample: which cases a manager audits, drawn at random but reproducibly.

Pure functions, no database: given how many cases each team had in the month, :func:`draw`
says which of them (by position in reference order) are audited.

- **Stratified by team**: every team with cases gets at least one; the rest of the sample is
  shared in proportion to each team's other cases, by largest remainder (ties to the bigger
  team, then by name), so no team gets more than it has.
- **Seeded**: each team's cases are put in an order by ``random.Random`` seeded with the month
  and the team, and the team's share is taken from the front of that order. The same month
  always draws the same cases; another team's cases never change this team's order (at most its
  share, which then takes more or fewer from the front of the same order).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from fractions import Fraction

SAMPLE_SIZE = 20  # managers audit about 20 case files a month


def shares(counts: Mapping[str, int], size: int = SAMPLE_SIZE) -> dict[str, int]:
    """How many cases each team gives the sample: ``size`` in all (fewer if there are fewer
    cases), at least one for every team with cases (more than ``size`` only when there are more
    such teams than ``size``), the rest in proportion, never more than a team has."""
    teams = {team: count for team, count in counts.items() if count > 0}
    if size < 0:
        raise ValueError("a sample cannot have a negative size")
    total = sum(teams.values())
    wanted = max(min(size, total), len(teams))  # every team with cases is audited
    given = dict.fromkeys(teams, 1)
    rest = wanted - len(teams)
    spare = total - len(teams)  # cases not yet given, over all teams
    if rest <= 0 or spare <= 0:
        return given
    quotas = {team: Fraction(rest * (count - 1), spare) for team, count in teams.items()}
    for team, quota in quotas.items():
        given[team] += int(quota)  # the floor: a quota is never negative
    left = rest - sum(int(q) for q in quotas.values())
    by_remainder = sorted(teams, key=lambda t: (-(quotas[t] - int(quotas[t])), -teams[t], t))
    for team in by_remainder[:left]:
        given[team] += 1
    return given


def seed(month: str, team: str) -> str:
    """The seed of one team's order in one month (a string seeds ``random.Random`` the same way
    in every process, whatever ``PYTHONHASHSEED`` says)."""
    return f"caseloop audit sample {month} {team}"


def order(month: str, team: str, count: int) -> list[int]:
    """The team's ``count`` cases (positions 0 to count-1, in reference order) in the month's
    seeded order: a share of k audits the first k."""
    positions = list(range(count))
    random.Random(seed(month, team)).shuffle(positions)
    return positions


def draw(counts: Mapping[str, int], month: str, size: int = SAMPLE_SIZE) -> dict[str, list[int]]:
    """Which cases of each team are audited in ``month`` (``YYYY-MM``): positions in the team's
    reference order, ascending."""
    return {
        team: sorted(order(month, team, counts[team])[:share])
        for team, share in sorted(shares(counts, size).items())
    }
