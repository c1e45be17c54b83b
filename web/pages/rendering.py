"""What every page shares: the templates, the signed-in member of staff, notices, paging.

Templates: the project's own (``web/templates``) and the GOV.UK Design System's component macros
from ``govuk-frontend-jinja``, under the prefix ``govuk_frontend_jinja/`` as its macros import
each other. Our ``layout.html`` does not extend that package's page template: it writes an
inline script, which the Content-Security-Policy forbids, and calls the header and footer
without parameters.

After a form succeeds the route redirects (303) to a page with ``?done=<key>``, and the page
shows the notice registered for that key. Only registered keys are shown, so nobody can make a
page say words of their choosing through a link.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, PrefixLoader, select_autoescape

from services import access
from services.actors import Actor
from services.runtime import Runtime
from workflow.staff import Role

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
PAGE_SIZE = 50  # rows per page of every long list; the services page through them in SQL

environment = Environment(
    loader=ChoiceLoader(
        [
            FileSystemLoader(TEMPLATES),
            PrefixLoader({"govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja", "templates")}),
        ]
    ),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
templates = Jinja2Templates(env=environment)

# key -> the words shown after a form succeeded (see the module's docstring).
NOTICES: dict[str, str] = {}


def notice(key: str, words: str) -> str:
    """Register the words of a notice; returns the key, for the route's redirect."""
    NOTICES[key] = words
    return key


class SignInNeeded(Exception):
    """Raised by :func:`signed_in` for a visitor who is not signed in: the app answers with a
    redirect to the sign-in page, which brings them back here afterwards."""

    def __init__(self, back_to: str) -> None:
        super().__init__(back_to)
        self.back_to = back_to


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def signed_in(request: Request) -> access.SignedIn:
    """A FastAPI dependency: the signed-in session, or a redirect to sign in."""
    signed: access.SignedIn | None = request.state.web_session
    if signed is None:
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInNeeded(back)
    return signed


def safe_next(target: str | None) -> str:
    """Where to go after signing in: only a path of this site (never ``//elsewhere``)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@dataclass(frozen=True)
class NavItem:
    href: str
    text: str


def navigation(actor: Actor | None) -> list[NavItem]:
    """The service navigation: only the pages this person can use."""
    if actor is None:
        return []
    items: list[NavItem] = []
    if actor.role is not None:
        items.append(NavItem("/my-work", "My work"))
        if actor.role in (Role.TEAM_MANAGER, Role.SERVICE_MANAGER):
            items.append(NavItem("/team", "Team queue"))
        items += [
            NavItem("/letters/held", "Letters to approve"),
            NavItem("/deliveries", "Failed deliveries"),
            NavItem("/open-loops", "Open loops"),
        ]
        if actor.role in (Role.TEAM_MANAGER, Role.SERVICE_MANAGER):
            items += [NavItem("/performance", "Performance"), NavItem("/audit", "Audit sample")]
    if actor.admin:
        items.append(NavItem("/admin", "Admin"))
    return items


def render(request: Request, name: str, context: dict[str, Any] | None = None, status: int = 200) -> Response:
    """A page: ``name`` rendered with what every page needs (who, the navigation, the form
    token, the council, and the notice a redirect asked for)."""
    signed: access.SignedIn | None = request.state.web_session
    actor = signed.actor if signed else None
    done = request.query_params.get("done")
    full: dict[str, Any] = {
        "actor": actor,
        "csrf_token": signed.csrf_token if signed else "",
        "navigation": navigation(actor),
        "current_path": request.url.path,
        "council": runtime(request).council,
        "notice": NOTICES.get(done) if done else None,
        **(context or {}),
    }
    return templates.TemplateResponse(request, name, full, status_code=status)


def redirect(path: str, done: str | None = None, **query: str) -> RedirectResponse:
    """After a form: 303 to ``path``, with the notice ``done`` (a registered key)."""
    params = {**query, **({"done": done} if done else {})}
    return RedirectResponse(path + (f"?{urlencode(params)}" if params else ""), status_code=303)


@dataclass(frozen=True)
class Paging:
    """Which page of a long list is shown, and the links to the others."""

    number: int  # from 1
    size: int
    total: int

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))

    @property
    def first_row(self) -> int:
        return 0 if self.total == 0 else self.offset + 1

    @property
    def last_row(self) -> int:
        return min(self.total, self.offset + self.size)


def page_number(request: Request) -> int:
    """The ``page`` query parameter, 1 when absent or not a positive whole number."""
    raw = request.query_params.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < int(raw) < 1_000_000 else 1


def page_link(request: Request, number: int) -> str:
    """This page's address with ``page`` set to ``number`` and every other filter kept."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("page", "done")]
    params.append(("page", str(number)))
    return f"{request.url.path}?{urlencode(params)}"


PAGES_AROUND = 2  # page numbers shown either side of the current one, besides the first and last


def pagination(
    request: Request,
    paging: Paging,
    link: Callable[[int], str] | None = None,
    label: str | None = None,
) -> dict[str, Any] | None:
    """The parameters of ``govukPagination`` for this page of a list (None: it fits on one):
    the first and last pages and those near this one. ``link`` makes a page's address (default:
    this address with ``page`` set); ``label`` names the list when a page has several."""
    if paging.pages <= 1:
        return None
    href = link or (lambda number: page_link(request, number))
    current, last = paging.number, paging.pages
    shown = sorted({1, last, *range(max(1, current - PAGES_AROUND), min(last, current + PAGES_AROUND) + 1)})
    items: list[dict[str, Any]] = []
    for before, number in zip([0, *shown], shown, strict=False):
        if number - before > 1:
            items.append({"ellipsis": True})
        items.append({"number": number, "href": href(number), "current": number == current})
    params: dict[str, Any] = {"items": items}
    if label:
        params["landmarkLabel"] = label
    if current > 1:
        params["previous"] = {"href": href(current - 1)}
    if current < last:
        params["next"] = {"href": href(current + 1)}
    return params
