"""``GET /open-loops``: everyone a duty owes a letter that has not reached them, oldest first,
with why; narrowed by reason, by audience and (for a service manager) by team."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from services import access, open_loops
from web.pages.rendering import PAGE_SIZE, Paging, page_number, pagination, render, runtime, signed_in

router = APIRouter(include_in_schema=False)

Filter = Annotated[str, Query(max_length=64)]


def _chosen(value: str) -> str | None:
    return value.strip() or None


@router.get("/open-loops")
def open_loops_page(
    request: Request,
    signed: Annotated[access.SignedIn, Depends(signed_in)],
    why: Filter = "",
    audience: Filter = "",
    team: Filter = "",
) -> Response:
    number = page_number(request)
    found = open_loops.open_loops(
        runtime(request),
        signed.actor,
        why=_chosen(why),
        audience=_chosen(audience),
        team=_chosen(team),
        limit=PAGE_SIZE,
        offset=(number - 1) * PAGE_SIZE,
    )
    paging = Paging(number, PAGE_SIZE, found.total)
    context: dict[str, Any] = {
        "found": found,
        "paging": paging,
        "pagination": pagination(request, paging),
        "chosen": {"why": why, "audience": audience, "team": team},
        "whys": open_loops.WHY_WORDS,
        "audiences": open_loops.AUDIENCE_WORDS,
    }
    return render(request, "pages/open_loops.html", context)
