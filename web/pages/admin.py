"""Admin (``/admin``): logins, API tokens and staff leavers, for admin logins only.

Every route asks the service layer first (``authorise`` with the action it is about), so anyone
else gets 403 whatever they send. Each action is a form that POSTs and redirects with a notice;
bad input is answered with the form again (422), an error summary and what was typed, except a
password, which is never written back into a page. A new API token is the one thing shown in
answer to a POST instead of after a redirect: it is shown once, and no later page can show it.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from services import access, people, tokens
from services.actors import Scope
from services.authorisation import Action, authorise
from services.paging import Slice
from web.pages.display import local_time, long_date
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
from workflow.errors import Conflict, Invalid, NotFound

router = APIRouter(include_in_schema=False)
Signed = Annotated[access.SignedIn, Depends(signed_in)]
MAX_PASSWORD = 1024  # as the sign-in form: argon2 hashes any length, nobody types more

USER_ADDED = notice("user-added", "Login made: they can sign in now.")
USER_DISABLED = notice("user-disabled", "Login disabled: its sessions have ended.")
TOKEN_REVOKED = notice("token-revoked", "Token revoked: its next request is refused.")
LEAVER_RECORDED = notice("leaver-recorded", "Leaver recorded.")
REJOINED = notice("staff-rejoined", "They are back: reminded, and may act, again.")

SCOPE_WORDS = {
    Scope.EVENTS_WRITE: "Send case events (events:write)",
    Scope.CASES_READ: "Read cases (cases:read)",
    Scope.OUTBOX_READ: "Read the outbox (outbox:read)",
}


def _paged(request: Request, fetch: Any) -> tuple[Slice[Any], Paging, str | None, str | None]:
    number = page_number(request)
    found: Slice[Any] = fetch((number - 1) * PAGE_SIZE, PAGE_SIZE)
    paging = Paging(number, PAGE_SIZE, found.total)
    previous = page_link(request, number - 1) if number > 1 else None
    following = page_link(request, number + 1) if number < paging.pages else None
    return found, paging, previous, following


def _listing(request: Request, fetch: Any) -> dict[str, Any]:
    found, paging, previous, following = _paged(request, fetch)
    return {"rows": found.items, "paging": paging, "previous": previous, "next": following}


def _summary(errors: dict[str, str], ids: dict[str, str]) -> list[dict[str, str]]:
    return [{"text": words, "href": f"#{ids.get(field, field)}"} for field, words in errors.items()]


def _shared(request: Request) -> dict[str, Any]:
    rt = runtime(request)
    return {"long_date": long_date, "local_time": lambda instant: local_time(rt, instant)}


# -- the overview ------------------------------------------------------------------------------


@router.get("/admin")
def admin_home(request: Request, signed: Signed) -> Response:
    rt, actor = runtime(request), signed.actor
    context = {
        "logins": access.users_page(rt, actor, 0, 1).total,
        "tokens": tokens.tokens_page(rt, actor, 0, 1).total,
        "staff": people.staff_page(rt, actor, 0, 1).total,
    }
    return render(request, "pages/admin/index.html", context)


# -- logins ------------------------------------------------------------------------------------

USER_FIELDS = {"staff_id": "staff_id", "password": "password", "confirm": "confirm", "no_cases": "no_cases"}


def _users(
    request: Request,
    signed: access.SignedIn,
    status: int = 200,
    errors: dict[str, str] | None = None,
    typed: dict[str, Any] | None = None,
) -> Response:
    rt, actor = runtime(request), signed.actor
    context = {
        **_shared(request),
        "list": _listing(request, lambda o, n: access.users_page(rt, actor, o, n)),
        "errors": errors or {},
        "error_list": _summary(errors or {}, USER_FIELDS),
        "typed": typed or {"staff_id": "", "admin": False, "no_cases": False},
        "min_password": access.MIN_PASSWORD_LENGTH,
    }
    return render(request, "pages/admin/users.html", context, status)


@router.get("/admin/users")
def users_page(request: Request, signed: Signed) -> Response:
    return _users(request, signed)


@router.post("/admin/users")
def add_user(
    request: Request,
    signed: Signed,
    staff_id: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=MAX_PASSWORD)] = "",
    confirm: Annotated[str, Form(max_length=MAX_PASSWORD)] = "",
    admin: Annotated[str, Form(max_length=8)] = "",
    no_cases: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    actor = signed.actor
    authorise(actor, Action.MANAGE_USERS)  # before anything is checked: others get 403 whatever they typed
    staff_id = staff_id.strip()
    typed = {"staff_id": staff_id, "admin": bool(admin), "no_cases": bool(no_cases)}
    errors: dict[str, str] = {}
    if not staff_id:
        errors["staff_id"] = "Enter the staff id of the member of staff the login is for"
    if len(password) < access.MIN_PASSWORD_LENGTH:
        errors["password"] = f"Enter a password of at least {access.MIN_PASSWORD_LENGTH} characters"
    elif not password.strip():
        errors["password"] = "Enter a password that is not only spaces"
    elif confirm != password:
        errors["confirm"] = "The two passwords differ: type the same password twice"
    if no_cases and not admin:
        errors["no_cases"] = "A login that reads no case must be an admin login, or it can do nothing"
    if not errors:
        try:
            access.add_user(
                runtime(request), actor, staff_id, password, admin=bool(admin), reads_cases=not no_cases
            )
        except (NotFound, Conflict) as exc:
            errors["staff_id"] = _sentence(str(exc))
        except Invalid as exc:
            errors["password"] = _sentence(str(exc))
    if errors:
        return _users(request, signed, 422, errors, typed)
    return redirect("/admin/users", done=USER_ADDED)


@router.post("/admin/users/{staff_id:path}/disable")
def disable_user(request: Request, staff_id: str, signed: Signed) -> Response:
    access.disable_user(runtime(request), signed.actor, staff_id)
    return redirect("/admin/users", done=USER_DISABLED)


# -- API tokens --------------------------------------------------------------------------------

TOKEN_FIELDS = {"name": "name", "scopes": "scopes", "teams": "teams"}


def _tokens(
    request: Request,
    signed: access.SignedIn,
    status: int = 200,
    errors: dict[str, str] | None = None,
    typed: dict[str, Any] | None = None,
) -> Response:
    rt, actor = runtime(request), signed.actor
    context = {
        **_shared(request),
        "list": _listing(request, lambda o, n: tokens.tokens_page(rt, actor, o, n)),
        "errors": errors or {},
        "error_list": _summary(errors or {}, TOKEN_FIELDS),
        "typed": typed or {"name": "", "scopes": [], "teams": ""},
        "scopes": [{"value": s.value, "text": SCOPE_WORDS.get(s, s.value)} for s in Scope],
    }
    return render(request, "pages/admin/tokens.html", context, status)


@router.get("/admin/tokens")
def tokens_page(request: Request, signed: Signed) -> Response:
    return _tokens(request, signed)


def _team_list(typed: str) -> list[str]:
    return [t.strip() for t in typed.replace("\n", ",").split(",") if t.strip()]


@router.post("/admin/tokens")
def create_token(
    request: Request,
    signed: Signed,
    name: Annotated[str, Form(max_length=200)] = "",
    scopes: Annotated[list[str] | None, Form()] = None,
    teams: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    actor = signed.actor
    authorise(actor, Action.MANAGE_TOKENS)
    name, chosen = name.strip(), scopes or []
    typed = {"name": name, "scopes": chosen, "teams": teams}
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = "Enter a name for the token: the system it is for"
    if not chosen:
        errors["scopes"] = "Select what the token may do"
    if not errors:
        try:
            made = tokens.create(runtime(request), actor, name, chosen, _team_list(teams))
        except tokens.TokenInvalid as exc:
            errors[exc.field] = _sentence(str(exc))
        except Conflict as exc:
            errors["name"] = _sentence(str(exc))
    if errors:
        return _tokens(request, signed, 422, errors, typed)
    # Shown in answer to this POST, never after a redirect: no address can show it again. The
    # security headers keep it out of every cache (no-store).
    return render(request, "pages/admin/token_made.html", {**_shared(request), "made": made})


@router.post("/admin/tokens/{name}/revoke")
def revoke_token(request: Request, name: str, signed: Signed) -> Response:
    tokens.revoke(runtime(request), signed.actor, name)
    return redirect("/admin/tokens", done=TOKEN_REVOKED)


# -- staff leavers -----------------------------------------------------------------------------

STAFF_FIELDS = {"staff_id": "leaver", "on": "on-day"}


def _staff(
    request: Request,
    signed: access.SignedIn,
    status: int = 200,
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
) -> Response:
    rt, actor = runtime(request), signed.actor
    context = {
        **_shared(request),
        "list": _listing(request, lambda o, n: people.staff_page(rt, actor, o, n)),
        "errors": errors or {},
        "error_list": _summary(errors or {}, STAFF_FIELDS),
        "typed": typed or {"staff_id": "", "day": "", "month": "", "year": ""},
    }
    return render(request, "pages/admin/staff.html", context, status)


@router.get("/admin/staff")
def staff_page(request: Request, signed: Signed) -> Response:
    return _staff(request, signed)


def _day(day: str, month: str, year: str) -> date | None:
    """The date typed in the three boxes; None for none typed; ValueError for one that is not real."""
    parts = [p.strip() for p in (day, month, year)]
    if not any(parts):
        return None
    if not all(p.isdigit() for p in parts) or len(parts[2]) != 4:
        raise ValueError("not a date")
    return date(int(parts[2]), int(parts[1]), int(parts[0]))


@router.post("/admin/staff/leavers")
def record_leaver(
    request: Request,
    signed: Signed,
    staff_id: Annotated[str, Form(max_length=64)] = "",
    day: Annotated[str, Form(alias="on-day", max_length=4)] = "",
    month: Annotated[str, Form(alias="on-month", max_length=4)] = "",
    year: Annotated[str, Form(alias="on-year", max_length=6)] = "",
) -> Response:
    actor = signed.actor
    authorise(actor, Action.MANAGE_STAFF)
    staff_id = staff_id.strip()
    typed = {"staff_id": staff_id, "day": day, "month": month, "year": year}
    errors: dict[str, str] = {}
    if not staff_id:
        errors["staff_id"] = "Enter the staff id of the member of staff who is leaving"
    on: date | None = None
    try:
        on = _day(day, month, year)
    except ValueError:
        errors["on"] = (
            "Enter their first day gone as a real date, for example 27 3 2026, or leave it empty for today"
        )
    if not errors:
        try:
            people.leave(runtime(request), actor, staff_id, on)
        except NotFound as exc:
            errors["staff_id"] = _sentence(str(exc))
    if errors:
        return _staff(request, signed, 422, errors, typed)
    return redirect("/admin/staff", done=LEAVER_RECORDED)


@router.post("/admin/staff/{staff_id:path}/rejoin")
def rejoin(request: Request, staff_id: str, signed: Signed) -> Response:
    people.rejoin(runtime(request), signed.actor, staff_id)
    return redirect("/admin/staff", done=REJOINED)


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] if text else text
