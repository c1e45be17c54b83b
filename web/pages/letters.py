"""Letters awaiting approval: ``GET /letters/held``, one letter at ``GET /letters/{id}`` with its
PDF (``/pdf``) or email (``/html``) for the frame on that page, and the approve and reject forms.

Every view of a letter's content is recorded in its audit trail by the service that shows it, so
the page (its text) and the frame (its PDF or HTML) each leave a ``viewed`` row. The content
routes are the only responses that may be framed, and only by our own pages (``web.headers``).
A decision that cannot be taken (no reason, not this person's to take, no longer held) is shown
on the letter page with what was typed, never half-done.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from services import access
from services.letter_review import held_letters, letter_content, letter_under_review
from services.letters import approve_letter, reject_letter
from web.pages.display import case_link, clock_time, long_date
from web.pages.rendering import (
    PAGE_SIZE,
    Paging,
    notice,
    page_number,
    pagination,
    redirect,
    render,
    runtime,
    signed_in,
)
from workflow.errors import Conflict, Forbidden, Invalid, NotFound
from workflow.limits import WORDS

router = APIRouter(include_in_schema=False)

MAX_ID = 2**31 - 1  # an id past what the database holds is a letter that does not exist
APPROVED = notice("letter-approved", "Letter approved: it will be sent.")
REJECTED = notice(
    "letter-rejected",
    "Letter rejected: it will not be sent. The duty it was for is still owed: tell them another "
    "way and record it done.",
)
DECISIONS = {
    "approve": ("approved", "Enter why the letter is safe to send"),
    "reject": ("rejected", "Enter why the letter must not be sent"),
}


def _outbox_id(raw: str) -> int:
    if not raw.isdigit() or int(raw) > MAX_ID:
        raise NotFound(f"no outbox message {raw}")  # the words of services.letters
    return int(raw)


@router.get("/letters/held")
def held(request: Request, signed: access.SignedIn = Depends(signed_in)) -> Response:
    rt = runtime(request)
    number = page_number(request)
    found = held_letters(rt, signed.actor, PAGE_SIZE, (number - 1) * PAGE_SIZE)
    paging = Paging(number, PAGE_SIZE, found.total)
    return render(
        request,
        "pages/letters_held.html",
        {
            "letters": found.rows,
            "paging": paging,
            "pagination": pagination(request, paging),
            "local_date": long_date,
            "case_link": case_link,
        },
    )


@router.get("/letters/{outbox_id}")
def letter(request: Request, outbox_id: str, signed: access.SignedIn = Depends(signed_in)) -> Response:
    return _letter_page(request, signed, _outbox_id(outbox_id))


def _letter_page(
    request: Request,
    signed: access.SignedIn,
    outbox_id: int,
    status: int = 200,
    *,
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
) -> Response:
    shown = letter_under_review(runtime(request), signed.actor, outbox_id)
    context: dict[str, Any] = {
        "letter": shown,
        "errors": errors or {},
        "typed": typed or {},
        "local_time": clock_time,
        "case_link": case_link,
        "max_reason": WORDS,
    }
    return render(request, "pages/letter.html", context, status)


@router.get("/letters/{outbox_id}/pdf")
def letter_pdf(
    request: Request, outbox_id: str, download: str = "", signed: access.SignedIn = Depends(signed_in)
) -> Response:
    oid = _outbox_id(outbox_id)
    body = letter_content(runtime(request), signed.actor, oid, "pdf")
    how = "attachment" if download else "inline"
    disposition = f'{how}; filename="letter-{oid}.pdf"'
    return Response(body, media_type="application/pdf", headers={"content-disposition": disposition})


@router.get("/letters/{outbox_id}/html")
def letter_html(request: Request, outbox_id: str, signed: access.SignedIn = Depends(signed_in)) -> Response:
    body = letter_content(runtime(request), signed.actor, _outbox_id(outbox_id), "html")
    return Response(body, media_type="text/html; charset=utf-8")


@router.post("/letters/{outbox_id}/approve")
def approve(
    request: Request,
    outbox_id: str,
    reason: Annotated[str, Form()] = "",
    signed: access.SignedIn = Depends(signed_in),
) -> Response:
    return _decide(request, signed, _outbox_id(outbox_id), "approve", reason)


@router.post("/letters/{outbox_id}/reject")
def reject(
    request: Request,
    outbox_id: str,
    reason: Annotated[str, Form()] = "",
    signed: access.SignedIn = Depends(signed_in),
) -> Response:
    return _decide(request, signed, _outbox_id(outbox_id), "reject", reason)


def _decide(
    request: Request, signed: access.SignedIn, outbox_id: int, decision: str, reason: str
) -> Response:
    done, missing = DECISIONS[decision]
    rt = runtime(request)
    if not reason.strip():
        error, status = missing, 422
    elif len(reason) > WORDS:
        error, status = f"The reason must be {WORDS} characters or fewer", 422
    else:
        try:
            if decision == "approve":
                approve_letter(rt, signed.actor, outbox_id, reason.strip())
            else:
                reject_letter(rt, signed.actor, outbox_id, reason.strip())
        except Forbidden:
            error, status = (
                "You cannot decide on this letter: only the case's allocated worker, its team manager "
                "or that team's service manager may approve or reject it",
                403,
            )
        except Conflict:
            error, status = f"This letter is no longer waiting for approval, so it was not {done}", 409
        except Invalid as exc:
            error, status = _sentence(str(exc)), 422
        else:
            return redirect("/letters/held", done=APPROVED if decision == "approve" else REJECTED)
    return _letter_page(
        request, signed, outbox_id, status, errors={decision: error}, typed={decision: reason}
    )


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]
