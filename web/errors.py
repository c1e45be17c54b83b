"""caseloop's errors as HTTP answers, the same for every route: one handler, one shape.

Every error of the integration API answers ``{"detail": "<what is wrong>"}``. The request
validation FastAPI does itself answers in the same shape (the field and the rule in words), so a
client reads one kind of error. The pages answer the same errors as a page in their own layout,
with the same status and words; a visitor who is not signed in is sent to sign in.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from web.pages.rendering import SignInNeeded, redirect, render
from workflow.errors import CaseloopError, Conflict, Forbidden, ImportFailed, Invalid, NotFound, Unavailable

# First match wins: an error that is both (an event conflict is Invalid and Conflict) takes the first.
STATUS: tuple[tuple[type[CaseloopError], int], ...] = (
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (Invalid, 422),
    (Unavailable, 503),
    (ImportFailed, 503),  # what was taken is kept; the same request again takes the rest
)


def status_of(exc: CaseloopError) -> int:
    return next((code for kind, code in STATUS if isinstance(exc, kind)), 500)


# Paths answered in JSON (systems call them); every other path is a page, answered as one.
MACHINE_PATHS = ("/api/", "/notify/", "/healthz", "/readyz", "/metrics", "/openapi.json")
HEADINGS = {
    401: "Sign in to see this page",
    403: "You cannot do that",
    404: "Page not found",
    405: "You cannot do that here",
    409: "That has changed",
    413: "That is too large",
    422: "There is a problem",
    503: "Sorry, caseloop is not available",
}


def _is_page(request: Request) -> bool:
    return not request.url.path.startswith(MACHINE_PATHS)


def answer(request: Request, status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    if not _is_page(request):
        return JSONResponse({"detail": detail}, status_code=status, headers=headers)
    heading = HEADINGS.get(status, "Sorry, there is a problem with caseloop")
    response = render(request, "error.html", {"heading": heading, "detail": detail}, status)
    response.headers.update(headers or {})
    return response


async def caseloop_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CaseloopError)
    status = status_of(exc)
    # An error of no known kind is a fault of ours: its words are not for the caller.
    detail = str(exc) if status != 500 else "caseloop failed; the fault is recorded by its type"
    return answer(request, status, _sentence(detail) if _is_page(request) else detail)


def _sentence(text: str) -> str:
    text = text.strip()
    return (text[:1].upper() + text[1:] + ("" if text.endswith((".", "?", "!")) else ".")) if text else text


async def invalid_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return answer(request, 422, describe(exc))


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else "the request was refused"
    if exc.status_code == 404 and _is_page(request):
        detail = "There is no page at this address. Check it, or start again from the start page."
    return answer(request, exc.status_code, detail, dict(exc.headers) if exc.headers else None)


async def sign_in_needed(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInNeeded)
    return redirect("/login", next=exc.back_to)


def describe(exc: RequestValidationError) -> str:
    """Each problem as "where: what", e.g. "query limit: Input should be less than or equal to 1000"."""
    parts = []
    for error in exc.errors():
        where = " ".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg', 'is not valid')}")
    return "; ".join(parts) or "the request is not valid"


def install(app: FastAPI) -> None:
    app.add_exception_handler(CaseloopError, caseloop_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(SignInNeeded, sign_in_needed)
