"""The team queue (``GET /team``) and reallocating cases from it (``POST /team/reallocate``).

A team or service manager sees their teams' overdue and at-risk clocks (the statutory
timescales in one table, the letter duties and local clocks in another), the cases nobody has,
and each worker's caseload; they tick cases and reallocate them to a worker of the team. The
filters are a GET form, each table pages on its own parameter, and the reallocation form posts
to an address that keeps them, so a refused reallocation shows the same rows again, ticked.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from services import access, allocation, team_queue
from services.team_queue import Rows, Table
from web.pages.display import long_date
from web.pages.rendering import PAGE_SIZE, Paging, notice, pagination, redirect, render, runtime, signed_in
from web.sessions import Signer

router = APIRouter(include_in_schema=False)

FILTERS = ("team", "worker", "clock", "status", "sort")
# Each list pages on its own query parameter, so moving through one keeps the others' places.
PAGERS = {"statutory": "page", "duties": "duties_page", "unallocated": "unallocated_page"}
REALLOCATED = notice("reallocated", "The selected cases were reallocated.")
# The counts and the worker of a reallocation's notice come back in the redirect's query, signed,
# so nobody can make this page say something of their choosing through a link.
NOTICE_PURPOSE = "team-reallocated"
# Boxes in one form; the service refuses, in words, more than it takes at once (and any
# reference too long to be a case's is "no such case").
MAX_CASES = 1000


@router.get("/team")
def team_page(request: Request, signed: Annotated[access.SignedIn, Depends(signed_in)]) -> Response:
    return _page(request, signed)


@router.post("/team/reallocate")
def reallocate(
    request: Request,
    signed: Annotated[access.SignedIn, Depends(signed_in)],
    case: Annotated[list[str] | None, Form(max_length=MAX_CASES)] = None,
    worker: Annotated[str, Form(max_length=64)] = "",
    as_of: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    chosen = case or []
    try:
        done = allocation.reallocate(runtime(request), signed.actor, chosen, worker, as_of)
    except allocation.ReallocationRefused as refused:
        return _page(request, signed, refused.problems, set(chosen), worker)
    moved, kept = str(len(done.moved)), str(len(done.unchanged))
    seal = _signer(request).token_for(NOTICE_PURPOSE, f"{moved}:{kept}:{done.worker}")
    return redirect(
        "/team", done=REALLOCATED, **_filters_of(request), moved=moved, kept=kept, to=done.worker, seal=seal
    )


def _signer(request: Request) -> Signer:
    signer: Signer = request.app.state.signer
    return signer


def _filters_of(request: Request) -> dict[str, str]:
    return {k: request.query_params[k] for k in FILTERS if request.query_params.get(k)}


def _page(
    request: Request,
    signed: access.SignedIn,
    problems: list[allocation.Problem] | None = None,
    selected: set[str] | None = None,
    worker: str = "",
) -> Response:
    rt, actor = runtime(request), signed.actor
    now = rt.clock()
    raw = _filters_of(request)
    choices = team_queue.choices(rt, actor, now)
    filters = team_queue.parse_filter(choices, **raw)
    tables: dict[str, Any] = {}
    for key in PAGERS:
        number = _page_number(request, key)
        if key == "unallocated":
            rows: Rows[Any] = team_queue.unallocated(
                rt, actor, filters.team, PAGE_SIZE, (number - 1) * PAGE_SIZE, now
            )
        else:
            rows = team_queue.queue(rt, actor, Table(key), filters, PAGE_SIZE, (number - 1) * PAGE_SIZE, now)
        paging = Paging(number, PAGE_SIZE, rows.total)
        tables[key] = {"rows": rows, "paging": paging, "pagination": _pagination(request, key, paging)}
    problems = problems or []
    names = {p.staff_id: p.name for p in choices.people}
    context = {
        "filters": filters,
        "raw": raw,
        "choices": choices,
        "tables": tables,
        "caseloads": team_queue.caseloads(rt, actor, filters.team, now),
        "at_risk_days": team_queue.AT_RISK_WORKING_DAYS,
        "unallocated_value": team_queue.UNALLOCATED,
        "names": names,
        "several_teams": len(choices.teams) > 1,
        "as_of": now.isoformat(),
        "today": rt.book.local_date(now),
        "action": "/team/reallocate" + (f"?{urlencode(raw)}" if raw else ""),
        "problems": problems,
        "error_links": _error_links(problems, tables),
        "worker_problems": [p.words for p in problems if p.about == "worker"],
        "case_problems": {p.case: p.words for p in problems if p.case},
        "selected": selected or set(),
        "chosen_worker": worker,
        "day": long_date,
        "sentence": sentence,
    }
    found = _reallocated_notice(request, names)
    if found:
        context["notice"] = found
    return render(request, "pages/team.html", context, 422 if problems else 200)


def _reallocated_notice(request: Request, names: dict[str, str]) -> str | None:
    query = request.query_params
    if query.get("done") != REALLOCATED:
        return None
    moved, kept, to, seal = (query.get(k, "") for k in ("moved", "kept", "to", "seal"))
    if not _signer(request).matches(NOTICE_PURPOSE, f"{moved}:{kept}:{to}", seal):
        return None  # the generic words registered for the key are shown instead
    who = names.get(to, to)
    if moved == "0":
        return f"Nothing was reallocated: the selected cases were already with {who}."
    words = f"{moved} case{'' if moved == '1' else 's'} reallocated to {who}"
    if kept != "0":
        words += f" ({kept} already with them)"
    return words + "."


def _error_links(problems: list[allocation.Problem], tables: dict[str, Any]) -> list[dict[str, str]]:
    """The error summary's entries, each linking to what it is about: the worker's select, the
    first box of the case, or the first box of the form."""
    first_box: dict[str, str] = {}
    for key in ("statutory", "duties", "unallocated"):
        for index, row in enumerate(tables[key]["rows"].items, start=1):
            first_box.setdefault(row.case, f"case-{key}-{index}")
    anywhere = next(iter(first_box.values()), "reallocate-worker")
    links = []
    for problem in problems:
        if problem.about == "worker":
            target = "reallocate-worker"
        elif problem.case:
            target = first_box.get(problem.case, anywhere)
        else:
            target = anywhere
        links.append({"text": sentence(problem.words), "href": f"#{target}"})
    return links


def _page_number(request: Request, key: str) -> int:
    raw = request.query_params.get(PAGERS[key], "1")
    return int(raw) if raw.isdigit() and 0 < int(raw) < 1_000_000 else 1


def _link(request: Request, key: str, number: int) -> str:
    """``/team`` with this list at page ``number``, every filter and the other lists' pages kept
    (also from the reallocation's address, whose query holds the same)."""
    skip = {PAGERS[key], "done", "moved", "kept", "to", "seal"}
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in skip]
    params.append((PAGERS[key], str(number)))
    return f"/team?{urlencode(params)}#{key}"


LIST_NAMES = {"statutory": "statutory clocks", "duties": "letter duties", "unallocated": "unallocated cases"}


def _pagination(request: Request, key: str, paging: Paging) -> dict[str, Any] | None:
    """This list's page links: each keeps the filters and the other lists' pages."""
    return pagination(request, paging, lambda n: _link(request, key, n), f"Pages of {LIST_NAMES[key]}")


def sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith((".", "?", "!")) else ".") if text else text
