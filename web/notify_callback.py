"""``POST /api/notify/callback``: GOV.UK Notify reports how each message fared.

Notify sends the bearer token set in its dashboard (``CASELOOP_NOTIFY_CALLBACK_TOKEN``), compared
here in constant time. Without a token configured the endpoint answers 503: a callback set up in
Notify but not here is a misconfiguration to notice, and Notify retries, so no receipt is lost
while it is fixed (the statuses are polled besides). Any other answer than 2xx makes Notify
retry, so a receipt already stored is still answered 200.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from services.actors import Actor, Kind
from services.receipts import Receipt, record_receipt
from services.runtime import Runtime
from web.schemas import ErrorBody

router = APIRouter(tags=["GOV.UK Notify"])
bearer = HTTPBearer(auto_error=False, description="The callback token set in GOV.UK Notify")
NOTIFY = Actor(Kind.SYSTEM, "govuk-notify")


class NotifyReceiptIn(BaseModel):
    """A delivery receipt as Notify posts it; fields caseloop does not read are kept as well."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1, max_length=64, description="Notify's notification id")
    reference: str | None = Field(default=None, max_length=255, description="Our outbox key")
    status: str = Field(min_length=1, max_length=32, examples=["delivered", "permanent-failure"])
    notification_type: str | None = Field(default=None, max_length=16, examples=["email", "letter"])


class ReceiptAnswer(BaseModel):
    stored: bool = True
    repeated: bool = Field(description="This receipt arrived before; nothing changed")


def _runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def from_notify(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    expected = _runtime(request).settings.notify_callback_token
    if expected is None or not expected.get_secret_value():
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "Notify callbacks are not set up: no callback token"
        )
    given = credentials.credentials if credentials is not None else ""
    if not hmac.compare_digest(given.encode(), expected.get_secret_value().encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "a valid bearer token is needed",
            headers={"WWW-Authenticate": "Bearer"},
        )


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The body is not JSON at all"},
    401: {"model": ErrorBody, "description": "No bearer token, or not the callback token"},
    422: {"model": ErrorBody, "description": "Not a receipt: the field and the problem"},
    503: {"model": ErrorBody, "description": "No callback token is configured"},
}


@router.post(
    "/api/notify/callback",
    summary="A GOV.UK Notify delivery receipt",
    response_model=ReceiptAnswer,
    responses=_ERRORS,
    dependencies=[Depends(from_notify)],
)
def notify_callback(body: NotifyReceiptIn, request: Request) -> ReceiptAnswer:
    # A plain def: the short transaction runs in the thread pool, not on the event loop.
    receipt = Receipt(body.id, body.reference, body.status, body.model_dump(mode="json"))
    outcome = record_receipt(_runtime(request), NOTIFY, receipt)
    return ReceiptAnswer(repeated=outcome.repeated)
