"""Where each part of a bar chart goes: bars, ticks and labels in the SVG's own units.

Pure arithmetic, so it is tested without a page; ``pages/charts.html`` only writes the numbers
out. The drawing is ``WIDTH`` by ``HEIGHT`` units in a ``viewBox`` and scales to the width it is
given: at 320 px wide, 13-unit text is about 10 px, still readable, so the units are chosen for
the narrowest screen and the chart simply grows on a wider one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 400
HEIGHT = 240
LEFT = 48  # room for the y axis's tick labels and its title
RIGHT = 8
TOP = 12
BOTTOM = 62  # room for two lines of month labels and the x axis's title
MIN_LABEL_GAP = 26  # units per month label: "Nov" at 12 units is about 21 wide, so none touch
MIN_VALUE_SLOT = 38  # a bar this wide (with its gap) has its value written above it
TICKS = (0, 25, 50, 75, 100)


@dataclass(frozen=True)
class Point:
    """One bar's data: the axis label (``Nov``), an optional second line (the year), its value
    as a percentage or None when nothing was counted, and words for its tooltip."""

    label: str
    sublabel: str
    value: int | None
    words: str


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    centre: float
    point: Point
    show_label: bool
    show_value: bool


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    left: float
    right: float
    top: float
    bottom: float  # the y of the x axis
    bars: list[Bar]
    ticks: list[Tick]

    @property
    def plot_middle_x(self) -> float:
        return (self.left + self.right) / 2

    @property
    def plot_middle_y(self) -> float:
        return (self.top + self.bottom) / 2


def y_of(value: float, top: float, bottom: float, maximum: float = 100) -> float:
    """The y of ``value`` on an axis from 0 (at ``bottom``) to ``maximum`` (at ``top``)."""
    clamped = min(max(value, 0), maximum)
    return bottom - (bottom - top) * clamped / maximum


def percent_chart(points: Sequence[Point]) -> BarChart:
    """A bar per point on a 0-100 % axis: bars fill 70 % of their slot, and month labels are
    thinned to every n-th so they never overlap (a point whose year changes keeps its year)."""
    left, right, top, bottom = LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM
    slot = (right - left) / max(len(points), 1)
    every = max(1, math.ceil(MIN_LABEL_GAP / slot))
    bars = []
    for n, point in enumerate(points):
        x = left + n * slot + slot * 0.15
        value = point.value if point.value is not None else 0
        y = y_of(value, top, bottom)
        bars.append(
            Bar(
                x=round(x, 2),
                y=round(y, 2),
                width=round(slot * 0.7, 2),
                height=round(bottom - y, 2),
                centre=round(left + (n + 0.5) * slot, 2),
                point=point,
                show_label=(len(points) - 1 - n) % every == 0,  # the latest month is always labelled
                show_value=slot >= MIN_VALUE_SLOT and point.value is not None,
            )
        )
    ticks = [Tick(round(y_of(t, top, bottom), 2), f"{t}%") for t in TICKS]
    return BarChart(WIDTH, HEIGHT, left, right, top, bottom, bars, ticks)
