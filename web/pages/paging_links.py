"""The GOV.UK pagination component's parameters for a long list (previous, numbers, next)."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from web.pages.rendering import Paging, page_link

AROUND = 2  # page numbers shown either side of the current one, besides the first and last


def pagination(request: Request, paging: Paging) -> dict[str, Any] | None:
    """``govukPagination`` parameters, or None when the list fits on one page."""
    if paging.pages <= 1:
        return None
    current, last = paging.number, paging.pages
    shown = sorted({1, last, *range(max(1, current - AROUND), min(last, current + AROUND) + 1)})
    items: list[dict[str, Any]] = []
    for before, number in zip([0, *shown], shown, strict=False):
        if number - before > 1:
            items.append({"ellipsis": True})
        items.append({"number": number, "href": page_link(request, number), "current": number == current})
    params: dict[str, Any] = {"items": items}
    if current > 1:
        params["previous"] = {"href": page_link(request, current - 1)}
    if current < last:
        params["next"] = {"href": page_link(request, current + 1)}
    return params
