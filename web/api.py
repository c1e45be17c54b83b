"""The integration API: events in from the case management system; cases, the overdue queue and
the outbox out. Every route calls the same services as the CLI, as the caller (a token limited
to its teams, or a signed-in member of staff within what they may see)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError

from services import intake, queries
from services.actors import Actor, Scope
from services.runtime import Runtime
from web.auth import needing, runtime
from web.event_lines import TOO_LARGE, event_lines
from web.schemas import (
    CaseView,
    ErrorBody,
    EventResult,
    EventsIn,
    EventsOut,
    OutboxPage,
    OutboxQuery,
    OverduePage,
    PageQuery,
)
from workflow.errors import Invalid


def each_query_parameter_once(request: Request) -> None:
    """Refuse a query parameter given twice: every one the API takes holds one value, and
    silently keeping the last of two (``?case=A&case=B``) would answer a question not asked."""
    seen: dict[str, int] = {}
    for key, _ in request.query_params.multi_items():
        seen[key] = seen.get(key, 0) + 1
    repeated = [key for key, count in seen.items() if count > 1]
    if repeated:
        raise RequestValidationError(
            [
                {"type": "repeated", "loc": ("query", key), "msg": f"given {seen[key]} times: give it once"}
                for key in repeated
            ]
        )


router = APIRouter(prefix="/api", tags=["integration"], dependencies=[Depends(each_query_parameter_once)])

_ERRORS: dict[int, dict[str, Any]] = {
    401: {
        "description": "No API token (and nobody signed in), or a token unknown or revoked.",
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}},
    },
    403: {"description": "The token lacks the scope this needs (the answer names it)."},
    404: {"description": "No such case, or one the caller may not see (the same answer)."},
    413: {"description": TOO_LARGE},
    422: {"description": "The request is not valid; the answer says what and why."},
    503: {"description": "The database could not be reached; what was taken is kept: send it again."},
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody, **_ERRORS[code]} for code in codes}


Rt = Annotated[Runtime, Depends(runtime)]


@router.post(
    "/events",
    summary="Send events, as the JSON Lines contract takes them",
    response_model=EventsOut,
    responses=_errors(401, 403, 413, 422, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": EventsIn.model_json_schema()}},
        }
    },
)
def post_events(
    actor: Annotated[Actor, Depends(needing(Scope.EVENTS_WRITE))],
    rt: Rt,
    lines: Annotated[list[str], Depends(event_lines)],
) -> EventsOut:
    """Each event is taken as a line of a file from this token (its position is its line
    number): accepted, skipped as a duplicate of one received before, or rejected and kept,
    listed by `caseloop events rejected` and retried as a file's would be. Sending the same
    request again changes nothing: every event is then a duplicate."""
    report = intake.import_events(rt, actor, lines, f"api:{actor.id}")
    return EventsOut(
        results=[
            EventResult(id=r.id, status=r.status, reason=r.reason, warnings=r.warnings)
            for r in report.results
        ]
    )


@router.get(
    "/cases/{ref:path}",
    summary="A case's state and clocks",
    response_model=CaseView,
    responses=_errors(401, 403, 404, 422),
)
def get_case(ref: str, actor: Annotated[Actor, Depends(needing(Scope.CASES_READ))], rt: Rt) -> dict[str, Any]:
    """What `caseloop case show --json` prints: no names or addresses."""
    return queries.case(rt, actor, ref)


@router.get(
    "/queue/overdue",
    summary="Clocks past their due date, most overdue first",
    response_model=OverduePage,
    responses=_errors(401, 403, 422),
)
def get_overdue(
    actor: Annotated[Actor, Depends(needing(Scope.CASES_READ))], rt: Rt, page: Annotated[PageQuery, Query()]
) -> queries.Page:
    """Who has each case (or why nobody does), why it is late and what to do."""
    return queries.overdue_page(rt, actor, page.limit, page.offset)


@router.get(
    "/outbox",
    summary="Messages caseloop sends, newest first",
    response_model=OutboxPage,
    responses=_errors(401, 403, 422),
)
def get_outbox(
    actor: Annotated[Actor, Depends(needing(Scope.OUTBOX_READ))],
    rt: Rt,
    page: Annotated[OutboxQuery, Query()],
) -> queries.Page:
    if page.status is not None and page.status not in queries.OUTBOX_STATUSES:
        raise Invalid(f"status {page.status!r} is not one of {', '.join(queries.OUTBOX_STATUSES)}")
    return queries.outbox_page(rt, actor, page.limit, page.offset, page.case, page.status)
