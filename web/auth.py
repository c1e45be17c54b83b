"""Who is calling: a system with an API token, or a member of staff signed in to the pages.

A bearer token, when one is sent, decides alone (a wrong one is refused, never passed over for a
session cookie). Without one, the caller is the signed-in member of staff the session middleware
put on ``request.state.actor``, if any. Neither: 401, with ``WWW-Authenticate: Bearer``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services import tokens
from services.actors import Actor, Kind, Scope
from services.runtime import Runtime

bearer = HTTPBearer(
    auto_error=False,  # a signed-in member of staff needs no token; we answer 401 ourselves
    scheme_name="apiToken",
    description="An API token made by `caseloop tokens create` (it starts with `cl_`).",
)
CHALLENGE = {"WWW-Authenticate": "Bearer"}


def runtime(request: Request) -> Runtime:
    rt = request.app.state.runtime
    assert isinstance(rt, Runtime)
    return rt


def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Actor:
    """The actor behind this request (a plain ``def``: the token is looked up in the database,
    which FastAPI then does in a worker thread, off the event loop)."""
    if credentials is not None:
        actor = tokens.caller(runtime(request), credentials.credentials)
        if actor is None:
            raise HTTPException(401, "the API token is not valid: it is unknown or was revoked", CHALLENGE)
        return actor
    if "authorization" in request.headers:
        raise HTTPException(401, "Authorization must be 'Bearer <API token>'", CHALLENGE)
    signed_in = getattr(request.state, "actor", None)
    if isinstance(signed_in, Actor):
        return signed_in
    raise HTTPException(401, "send an API token as 'Authorization: Bearer <token>', or sign in", CHALLENGE)


def needing(scope: Scope) -> Callable[[Actor], Actor]:
    """A dependency: the caller, refused (403, naming the scope) when its token lacks ``scope``.
    Staff have no scopes: what they may see is decided case by case by the services."""

    def dependency(actor: Annotated[Actor, Depends(caller)]) -> Actor:
        if actor.kind is Kind.CLIENT and scope not in actor.scopes:
            raise HTTPException(403, f"the token {actor.id} lacks the scope {scope.value}")
        return actor

    return dependency
