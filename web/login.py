"""Signing in and out: ``GET/POST /login``, ``POST /logout`` and ``/``, who is signed in.

The login form carries a pre-session token: the HMAC, with the secret key, of a random value kept
in a cookie of its own. A form posted from elsewhere has neither, so nobody can sign a victim's
browser in as someone else. Routes that check a password are plain ``def`` (argon2 takes most of
a second): FastAPI runs them in its thread pool, never on the event loop.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from services import access
from services.runtime import Runtime
from web.pages.rendering import render, safe_next
from web.sessions import LOGIN_COOKIE, SESSION_COOKIE, Signer

router = APIRouter(include_in_schema=False)  # pages, not the integration API
LOGIN_PURPOSE = "login"
LOGIN_FORM_SECONDS = 60 * 60  # a login page left open longer is loaded again
MAX_PASSWORD = 1024  # argon2 hashes any length; nobody types more, and hashing megabytes is a cost


def _runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def _signer(request: Request) -> Signer:
    signer: Signer = request.app.state.signer
    return signer


def _secure(request: Request) -> bool:
    return _runtime(request).settings.secure_cookies


def _login_page(
    request: Request,
    status: int,
    *,
    error: str | None = None,
    username: str = "",
    form: bool = True,
    headers: dict[str, str] | None = None,
    next_path: str = "/",
) -> Response:
    nonce = secrets.token_urlsafe(32)
    context: dict[str, Any] = {
        "token": _signer(request).token_for(LOGIN_PURPOSE, nonce),
        "error": error,
        "username": username,
        "form": form,
        "next_path": safe_next(next_path),
    }
    response = render(request, "login.html", context, status)
    response.headers.update(headers or {})
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=LOGIN_FORM_SECONDS,
        path="/login",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    return response


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    # Shown even to someone signed in (the page says so): signing in again ends that session.
    return _login_page(request, 200, next_path=next)


@router.post("/login")
def log_in(
    request: Request,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=MAX_PASSWORD)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    nonce = request.cookies.get(LOGIN_COOKIE)
    if not nonce or not _signer(request).matches(LOGIN_PURPOSE, nonce, csrf_token):
        why = "The sign-in form had expired or came from another site: please sign in again."
        return _login_page(request, 403, username=username, error=why, next_path=next)
    if not username.strip() or not password:
        return _login_page(
            request, 422, username=username, error="Enter your staff id and your password.", next_path=next
        )
    signed: access.SignedIn | None = request.state.web_session
    address = request.client.host if request.client else "unknown"
    try:
        new = access.log_in(
            _runtime(request), username, password, address, replacing=signed.key if signed else None
        )
    except access.TooManyAttempts as exc:
        return _login_page(
            request,
            429,
            form=False,
            error=f"There have been {exc}.",
            headers={"retry-after": str(exc.retry_after)},
        )
    except access.LoginRefused as exc:
        return _login_page(request, 401, username=username, error=f"{str(exc).capitalize()}.", next_path=next)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        _signer(request).sign("session", new.cookie_value),
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
        # No max_age: the cookie goes when the browser closes; the row's time-outs are the limit.
    )
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
def log_out(request: Request) -> Response:
    signed: access.SignedIn | None = request.state.web_session
    if signed is not None:
        access.log_out(_runtime(request), signed.key)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=_secure(request))
    return response


@router.get("/")
def home(request: Request) -> Response:
    signed: access.SignedIn | None = request.state.web_session
    if signed is None:
        return RedirectResponse("/login", status_code=303)
    return render(request, "home.html")
