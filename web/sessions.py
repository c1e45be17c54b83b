"""Who is signed in, and whether an unsafe request really came from our own pages.

:class:`Sessions` is a plain ASGI middleware (not ``BaseHTTPMiddleware``, which would buffer every
response). Before any route runs it sets ``request.state.actor`` (the signed-in member of staff,
or ``None``) and ``request.state.web_session`` (a :class:`services.access.SignedIn`, or ``None``).

The cookie holds only a random id, signed with the secret key; the session row behind it is
checked on every request, so logout, a disabled login or a leaver end it at once.

CSRF: an unsafe request (POST, PUT, PATCH, DELETE) that carries one of our cookies must not come
from another origin, and one made within a session must carry that session's token, in the
``csrf_token`` form field or the ``X-CSRF-Token`` header; otherwise 403. Requests without our
cookies (systems with bearer tokens) are not subject to it: a browser sends cookies on its own,
bearer tokens it does not. The login form has its own pre-session token (see :mod:`web.login`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services import access
from services.runtime import Runtime

SESSION_COOKIE = "caseloop_session"
LOGIN_COOKIE = "caseloop_login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Paths whose unsafe requests carry a token of their own instead of the session's.
OWN_TOKEN = frozenset({"/login"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
MAX_FORM_BYTES = 1024 * 1024  # a staff form is a few fields; nothing larger is read to find a token


class Signer:
    """HMAC-SHA256 signatures with the secret key, each for one purpose (a session cookie's value
    can never pass as a login token, nor the reverse)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, purpose: str, value: str) -> str:
        digest = hmac.new(self._key, f"{purpose}\0{value}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def sign(self, purpose: str, value: str) -> str:
        return f"{value}.{self._mac(purpose, value)}"

    def unsign(self, purpose: str, signed: str) -> str | None:
        value, _, mac = signed.rpartition(".")
        return value if value and hmac.compare_digest(mac, self._mac(purpose, value)) else None

    def token_for(self, purpose: str, value: str) -> str:
        """A token that only a holder of the key could compute from ``value``."""
        return self._mac(purpose, value)

    def matches(self, purpose: str, value: str, token: str) -> bool:
        return hmac.compare_digest(token.encode(), self._mac(purpose, value).encode())


def signer_for(rt: Runtime) -> Signer:
    """The secret key signs; without one (development and tests only: production refuses to
    start) a random key serves this process, and its sessions end when it stops."""
    secret = rt.settings.secret_key
    return Signer(secret.get_secret_value().encode() if secret else secrets.token_bytes(32))


def _origin_of(scope: Scope, headers: dict[str, str]) -> str:
    return f"{scope.get('scheme', 'http')}://{headers.get('host', '')}".lower()


def _refuse(form: bool, why: str) -> Response:
    if form:
        page = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Refused - caseloop'
            f"</title></head><body><main><h1>This form was refused</h1><p>{why}</p>"
            '<p><a href="/">Go back to caseloop</a> and try again.</p></main></body></html>'
        )
        return HTMLResponse(page, status_code=403)
    return JSONResponse({"detail": why}, status_code=403)


class Sessions:
    def __init__(self, app: ASGIApp, *, runtime: Runtime, signer: Signer) -> None:
        self.app = app
        self.runtime = runtime
        self.signer = signer
        self.trusted_origins = {urlsplit(runtime.settings.base_url)._replace(path="").geturl().lower()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        state = scope.setdefault("state", {})
        state["actor"], state["web_session"] = None, None
        raw = request.cookies.get(SESSION_COOKIE)
        cookie_value = self.signer.unsign("session", raw) if raw else None
        signed: access.SignedIn | None = None
        if cookie_value:
            signed = await anyio.to_thread.run_sync(access.signed_in, self.runtime, cookie_value)
        if signed is not None:
            state["actor"], state["web_session"] = signed.actor, signed
        if scope["method"] not in UNSAFE or (raw is None and LOGIN_COOKIE not in request.cookies):
            await self.app(scope, receive, send)
            return

        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        is_form = content_type in FORM_TYPES
        origin = request.headers.get("origin")
        if origin is not None and origin.lower() not in {
            _origin_of(scope, dict(request.headers)),
            *self.trusted_origins,
        }:
            await _refuse(is_form, "It came from another site.")(scope, receive, send)
            return
        # A stale or forged cookie signs in nobody: the request goes on as anonymous, and has no
        # session's token to match.
        if signed is None or scope["path"] in OWN_TOKEN:
            await self.app(scope, receive, send)
            return
        token = request.headers.get(CSRF_HEADER)
        if token is None and is_form:
            body, replay = await _buffer(receive)
            if body is None:
                await Response("The form is too large.", status_code=413)(scope, receive, send)
                return
            form = await Request(scope, _once(body)).form()
            field = form.get(CSRF_FIELD)
            token = field if isinstance(field, str) else None
            receive = replay
        if token is None or not hmac.compare_digest(token.encode(), signed.csrf_token.encode()):
            why = "It did not carry this session's security token (the page may be out of date)."
            await _refuse(is_form, why)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _once(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _buffer(receive: Receive) -> tuple[bytes | None, Receive]:
    """Read the whole body (refusing more than ``MAX_FORM_BYTES``) and a ``receive`` that hands
    it on to the route as if it were read for the first time."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return None, receive
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    first: list[Callable[[], Awaitable[Message]]] = [_once(body)]

    async def replay() -> Message:
        if first:
            return await first.pop()()
        return await receive()

    return body, replay
