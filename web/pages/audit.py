"""The audit sample: ``GET /audit`` (the months and their findings), ``GET /audit/{month}`` (the
sampled cases, a form for each), ``POST /audit/{month}/draw`` and
``POST /audit/{month}/cases/{ref}`` (record or correct a finding). Team and service managers
only; each sees the sampled cases of the cases they may see.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from services import access, audit
from web.pages.rendering import (
    PAGE_SIZE,
    Paging,
    notice,
    page_link,
    page_number,
    redirect,
    render,
    runtime,
    signed_in,
)
from workflow.months import Month

router = APIRouter(include_in_schema=False)

DRAWN = notice("audit-drawn", "The sample for the month has been drawn.")
ALREADY = notice("audit-already-drawn", "The sample for the month had been drawn already: nothing changed.")
RECORDED = notice("audit-recorded", "The finding has been recorded.")
RECENT_MONTHS = 12  # months offered for drawing on the summary page
Answer = Annotated[str, Form(max_length=32)]


@router.get("/audit")
def audit_months(request: Request, signed: Annotated[access.SignedIn, Depends(signed_in)]) -> Response:
    rt = runtime(request)
    number = page_number(request)
    found = audit.months(rt, signed.actor, PAGE_SIZE, (number - 1) * PAGE_SIZE)
    paging = Paging(number, PAGE_SIZE, found.total)
    drawn = {m.month for m in found.items}
    this = Month.of(rt.book.local_date(rt.clock()))
    recent = [this.plus(-n) for n in range(1, RECENT_MONTHS + 1)]
    context: dict[str, Any] = {
        "months": found.items,
        "paging": paging,
        "previous_link": page_link(request, number - 1) if number > 1 else None,
        "next_link": page_link(request, number + 1) if number < paging.pages else None,
        "recent": [m for m in recent if str(m) not in drawn] if number == 1 else [],
        "month_of": Month.parse,
    }
    return render(request, "pages/audit.html", context)


def _month_page(
    request: Request,
    signed: access.SignedIn,
    month: Month,
    *,
    errors: dict[str, str] | None = None,
    failed_ref: str | None = None,
    typed: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    view = audit.month_view(runtime(request), signed.actor, month)
    context: dict[str, Any] = {
        "view": view,
        "errors": errors or {},
        "failed_ref": failed_ref,
        "typed": typed or {},
        "questions": audit.QUESTIONS,
        "quote": lambda ref: quote(ref, safe=""),
    }
    return render(request, "pages/audit_month.html", context, status)


@router.get("/audit/{month}")
def audit_month(
    request: Request, month: str, signed: Annotated[access.SignedIn, Depends(signed_in)]
) -> Response:
    return _month_page(request, signed, audit.month_of(month))


@router.post("/audit/{month}/draw")
def draw_sample(
    request: Request, month: str, signed: Annotated[access.SignedIn, Depends(signed_in)]
) -> Response:
    chosen = audit.month_of(month)
    drawn = audit.draw(runtime(request), signed.actor, chosen)
    return redirect(f"/audit/{chosen}", done=DRAWN if drawn.added else ALREADY)


@router.post("/audit/{month}/cases/{ref}")
def record_finding(
    request: Request,
    month: str,
    ref: str,
    signed: Annotated[access.SignedIn, Depends(signed_in)],
    family_told: Answer = "",
    referrer_told: Answer = "",
    letters_right: Answer = "",
    notes: Annotated[str, Form(max_length=4 * audit.NOTES)] = "",
) -> Response:
    chosen = audit.month_of(month)
    answers = {
        "family_told": family_told,
        "referrer_told": referrer_told,
        "letters_right": letters_right,
        "notes": notes,
    }
    try:
        audit.record_finding(runtime(request), signed.actor, chosen, ref, answers)
    except audit.FindingInvalid as exc:
        return _month_page(
            request, signed, chosen, errors=exc.errors, failed_ref=ref, typed=exc.typed, status=422
        )
    return redirect(f"/audit/{chosen}", done=RECORDED)
