"""``GET /cases/{ref}``: a case's timeline (the daily reminder emails link here). A reference
may hold ``/``, so the route takes the rest of the path; oldest first, or newest first."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from services import access, timeline
from web.pages.rendering import PAGE_SIZE, Paging, page_number, pagination, render, runtime, signed_in

router = APIRouter(include_in_schema=False)

NEWEST = "newest"


@router.get("/cases/{ref:path}")
def case_timeline(
    request: Request, ref: str, signed: Annotated[access.SignedIn, Depends(signed_in)], order: str = ""
) -> Response:
    number = page_number(request)
    newest_first = order == NEWEST
    found = timeline.timeline(
        runtime(request),
        signed.actor,
        ref,
        newest_first=newest_first,
        limit=PAGE_SIZE,
        offset=(number - 1) * PAGE_SIZE,
    )
    paging = Paging(number, PAGE_SIZE, found.total)
    here = f"/cases/{quote(found.header.ref)}"
    context: dict[str, Any] = {
        "found": found,
        "paging": paging,
        "pagination": pagination(request, paging),
        "other_order": here if newest_first else f"{here}?order={NEWEST}",
    }
    return render(request, "pages/timeline.html", context)
