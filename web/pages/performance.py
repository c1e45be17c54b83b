"""``GET /performance`` and ``GET /performance.csv``: the timeliness figures for managers.

A chart per measure (SVG drawn here, no script), the same numbers in a table under it, and the
rows as CSV with the same filters. A social worker is refused with words saying who may look.
"""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from services import access, performance
from web.pages.chart_geometry import BarChart, Point, percent_chart
from web.pages.rendering import render, runtime, signed_in

router = APIRouter(include_in_schema=False)
Text = Annotated[str, Query(max_length=64)]


def _chart(measured: performance.MeasureReport) -> BarChart:
    points = []
    for n, figure in enumerate(measured.by_month):
        new_year = n == 0 or figure.month.month == 1
        words = (
            f"{figure.month.label}: nothing counted"
            if figure.percent is None
            else f"{figure.month.label}: {figure.percent}% ({figure.on_time} of {figure.due})"
        )
        year = str(figure.month.year) if new_year else ""
        points.append(Point(figure.month.short, year, figure.percent, words))
    return percent_chart(points)


def _description(measured: performance.MeasureReport, chosen: performance.Filters) -> str:
    what = measured.measure
    whose = f"team {chosen.team}" if chosen.team else "all your teams"
    span = f"from {chosen.first.label} to {chosen.last.label}"
    if what.key == performance.RE_REFERRALS:
        shown = "referrals that were re-referrals within 12 months"
    else:
        shown = what.label[0].lower() + what.label[1:]
    opening = f"Bar chart of the percentage of {shown}, by month, {span}, for {whose}."
    latest = measured.latest
    if latest is None:
        return f"{opening} Nothing was counted in these months."
    return f"{opening} Latest: {latest.month.label}, {latest.percent}% ({latest.on_time} of {latest.due})."


def _query(chosen: performance.Filters) -> dict[str, str]:
    return {"team": chosen.team or "", "from": str(chosen.first), "to": str(chosen.last)}


def _page(
    request: Request,
    signed: access.SignedIn,
    report: performance.Report | None,
    errors: dict[str, str],
    typed: dict[str, str],
    status: int,
) -> Response:
    rt = runtime(request)
    context: dict[str, Any] = {
        "report": report,
        "errors": errors,
        "typed": typed,
        "teams": performance.teams_of(signed.actor),
        "months": performance.offered_months(rt),
        "charts": [(_chart(m), _description(m, report.filters)) for m in report.measures] if report else [],
        "csv_link": "/performance.csv?" + urlencode(_query(report.filters)) if report else "",
    }
    return render(request, "pages/performance.html", context, status)


@router.get("/performance")
def performance_page(
    request: Request,
    signed: Annotated[access.SignedIn, Depends(signed_in)],
    team: Text = "",
    first: Annotated[str, Query(alias="from", max_length=64)] = "",
    last: Annotated[str, Query(alias="to", max_length=64)] = "",
) -> Response:
    rt = runtime(request)
    try:
        chosen = performance.filters(rt, signed.actor, team, first, last)
    except performance.FiltersInvalid as exc:
        return _page(request, signed, None, exc.errors, exc.typed, 422)
    result = performance.report(rt, signed.actor, chosen)
    return _page(request, signed, result, {}, _query(chosen), 200)


@router.get("/performance.csv")
def performance_csv(
    request: Request,
    signed: Annotated[access.SignedIn, Depends(signed_in)],
    team: Text = "",
    first: Annotated[str, Query(alias="from", max_length=64)] = "",
    last: Annotated[str, Query(alias="to", max_length=64)] = "",
) -> Response:
    rt = runtime(request)
    chosen = performance.filters(rt, signed.actor, team, first, last)  # a bad filter is a 422 page
    result = performance.report(rt, signed.actor, chosen)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows(performance.csv_rows(result))
    name = f"caseloop-performance-{chosen.first}-to-{chosen.last}.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )
