"""caseloop's errors as HTTP answers, the same for every route: one handler, one shape.

Every error answers ``{"detail": "<what is wrong>"}``. The request validation FastAPI does itself
answers in the same shape (the field and the rule in words), so a client reads one kind of error.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

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


async def caseloop_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CaseloopError)
    status = status_of(exc)
    # An error of no known kind is a fault of ours: its words are not for the caller.
    detail = str(exc) if status != 500 else "caseloop failed; the fault is recorded by its type"
    return JSONResponse({"detail": detail}, status_code=status)


async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": describe(exc)}, status_code=422)


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
