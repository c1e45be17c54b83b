"""Failed and returned deliveries, and messages whose outcome is unknown: ``GET /deliveries``.

Each row says what happened and what to do next, as caseloop will (and will not) act on it; the
filters (status, channel) are a plain GET form, so a filtered list is a link like any other.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from services import access
from services.deliveries import check_filters, deliveries
from web.pages.display import case_link, clock_time
from web.pages.rendering import PAGE_SIZE, Paging, page_number, pagination, render, runtime, signed_in
from workflow.errors import Invalid

router = APIRouter(include_in_schema=False)

STATUS_CHOICES = (
    ("", "Failed and unknown"),
    ("failed", "Failed or returned"),
    ("unknown", "Outcome unknown"),
)
CHANNEL_CHOICES = (("", "Email and post"), ("email", "Email"), ("post", "Post"))


@router.get("/deliveries")
def failed_deliveries(
    request: Request, status: str = "", channel: str = "", signed: access.SignedIn = Depends(signed_in)
) -> Response:
    rt = runtime(request)
    number = page_number(request)
    context = {
        "status": status,
        "channel": channel,
        "status_choices": STATUS_CHOICES,
        "channel_choices": CHANNEL_CHOICES,
        "local_time": clock_time,
        "case_link": case_link,
    }
    try:
        check_filters(status or None, channel or None)
    except Invalid as exc:
        field = "status" if str(exc).startswith("status") else "channel"
        words = "Choose a status from the list" if field == "status" else "Choose a channel from the list"
        paging = Paging(1, PAGE_SIZE, 0)
        return render(
            request,
            "pages/deliveries.html",
            {**context, "rows": [], "paging": paging, "pagination": None, "error": (field, words)},
            422,
        )
    found = deliveries(
        rt, signed.actor, PAGE_SIZE, (number - 1) * PAGE_SIZE, status=status or None, medium=channel or None
    )
    paging = Paging(number, PAGE_SIZE, found.total)
    return render(
        request,
        "pages/deliveries.html",
        {
            **context,
            "rows": found.rows,
            "paging": paging,
            "pagination": pagination(request, paging),
            "error": None,
        },
    )
