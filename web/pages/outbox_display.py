"""How the outbox pages (held letters, deliveries) show dates, times and their page links."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from urllib.parse import quote

from fastapi import Request

from web.pages.rendering import Paging, page_link


def case_link(ref: str) -> str:
    """The address of a case's timeline, its reference quoted whole (a ``/`` in it included)."""
    return "/cases/" + quote(ref, safe="")


def local_date(day: date) -> str:
    """A local date as staff write it: 3 November 2026."""
    return f"{day.day} {day:%B %Y}"


def local_time(instant: datetime) -> str:
    """An instant already in the council's time zone: 3 November 2026, 10:05."""
    return f"{local_date(instant.date())}, {instant:%H:%M}"


def pagination(request: Request, paging: Paging) -> dict[str, Any] | None:
    """The parameters of ``govukPagination`` for this page of a list (None: one page only)."""
    if paging.pages <= 1:
        return None
    shown = [n for n in range(1, paging.pages + 1) if n in (1, paging.pages) or abs(n - paging.number) <= 2]
    items: list[dict[str, Any]] = []
    for previous, n in zip([0, *shown], shown, strict=False):
        if n - previous > 1:
            items.append({"ellipsis": True})
        items.append({"number": n, "href": page_link(request, n), "current": n == paging.number})
    params: dict[str, Any] = {"items": items}
    if paging.number > 1:
        params["previous"] = {"href": page_link(request, paging.number - 1)}
    if paging.number < paging.pages:
        params["next"] = {"href": page_link(request, paging.number + 1)}
    return params
