"""Where the bars, ticks and labels of a percentage chart go."""

from __future__ import annotations

from web.pages.chart_geometry import BOTTOM, HEIGHT, LEFT, RIGHT, TOP, WIDTH, Point, percent_chart, y_of
from workflow.months import Month


def points(*values: int | None) -> list[Point]:
    return [Point(f"M{n}", "", v, f"month {n}") for n, v in enumerate(values)]


def test_bars_rise_from_the_axis_in_proportion_to_their_value() -> None:
    chart = percent_chart(points(0, 50, 100, None))
    floor, ceiling = HEIGHT - BOTTOM, TOP
    heights = [b.height for b in chart.bars]
    assert heights[0] == 0 and heights[3] == 0
    assert heights[2] == floor - ceiling and heights[1] == (floor - ceiling) / 2
    assert all(b.y + b.height == floor for b in chart.bars)
    assert [t.label for t in chart.ticks] == ["0%", "25%", "50%", "75%", "100%"]
    assert chart.ticks[0].y == floor and chart.ticks[-1].y == ceiling


def test_bars_stay_inside_the_plot_and_do_not_overlap() -> None:
    chart = percent_chart(points(*range(0, 120, 10)))
    assert chart.bars[0].x >= LEFT and chart.bars[-1].x + chart.bars[-1].width <= WIDTH - RIGHT
    for left, right in zip(chart.bars, chart.bars[1:], strict=False):
        assert left.x + left.width < right.x
    assert y_of(150, TOP, HEIGHT - BOTTOM) == TOP and y_of(-5, TOP, HEIGHT - BOTTOM) == HEIGHT - BOTTOM


def test_month_labels_thin_out_on_long_ranges_and_the_latest_keeps_its_label() -> None:
    twelve = percent_chart(points(*[50] * 12))
    assert all(b.show_label for b in twelve.bars)
    thirty_six = percent_chart(points(*[50] * 36))
    shown = [n for n, b in enumerate(thirty_six.bars) if b.show_label]
    assert shown[-1] == 35 and 6 <= len(shown) <= 14
    assert all(b.show_value for b in percent_chart(points(10, 20, 30)).bars)
    assert not any(b.show_value for b in twelve.bars)  # no room to write values over 12 bars


def test_months_count_and_read_as_local_calendar_months() -> None:
    assert str(Month.parse("2026-11").plus(2)) == "2027-01"
    assert [str(m) for m in Month(2026, 11).months_until(Month(2027, 1))] == ["2026-11", "2026-12", "2027-01"]
    assert Month(2026, 11).label == "November 2026" and Month(2026, 11).short == "Nov"
