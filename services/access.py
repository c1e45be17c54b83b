"""Logins and sessions: making and disabling a member of staff's login, logging in (rate-limited),
and turning a session cookie back into an actor on every request.

A login belongs to a member of the staff directory; its role and team come from there on every
request, so a move of team or a leaving day takes effect at once. A session ends on logout, when
its login is disabled, when its member of staff leaves, after ``session_idle_minutes`` without a
request and ``session_absolute_hours`` after it began, whichever comes first.

An **admin-only login** (``users add --admin --no-cases``) is still a member of the directory, but
its actor has no role and no team: it manages users and tokens and reads no case at all.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import cache

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session

from config.settings import Settings
from services.actors import Actor, staff_member
from services.authorisation import Action, authorise
from services.paging import Slice, page_of
from services.runtime import Runtime
from workflow.access import LoginAttempt, User, WebSession
from workflow.errors import CaseloopError, Conflict, Forbidden, Invalid, NotFound
from workflow.staff import Staff

MIN_PASSWORD_LENGTH = 12
# Writing last_seen_at on every request would make every page a write (and, on SQLite, take the
# write lock); once a minute is enough for an idle limit counted in minutes.
LAST_SEEN_EVERY = timedelta(minutes=1)
_FIELD = 64  # the width of login_attempts' username and address columns


class LoginRefused(CaseloopError):
    """The staff id or password is wrong, or the login may not be used (401). One message for
    every reason, so the answer never says which staff ids have a login."""

    def __init__(self) -> None:
        super().__init__("the staff id or password is not right")


class TooManyAttempts(CaseloopError):
    """Too many failed logins for this staff id or from this address (429)."""

    def __init__(self, minutes: int) -> None:
        self.retry_after = minutes * 60
        super().__init__(f"too many failed logins: try again in {minutes} minutes")


# -- passwords ---------------------------------------------------------------------------------


@cache
def _hasher(profile: str) -> PasswordHash:
    if profile == "fast":  # tests only: production refuses this setting (config.settings)
        return PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))
    return PasswordHash.recommended()


@cache
def _decoy(profile: str) -> str:
    """A hash to verify against when the staff id has no login, so that answer takes as long
    as a wrong password does."""
    return _hasher(profile).hash(secrets.token_urlsafe(16))


def hash_password(settings: Settings, password: str) -> str:
    return _hasher(settings.password_hashing).hash(password)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if not password.strip():
        raise Invalid("a password cannot be only spaces")


# -- users -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Login:
    staff_id: str
    role: str
    team: str
    admin: bool
    reads_cases: bool
    created: bool  # False: a disabled login was enabled again with this password


def add_user(
    rt: Runtime,
    actor: Actor,
    staff_id: str,
    password: str,
    *,
    admin: bool = False,
    reads_cases: bool = True,
) -> Login:
    """Make a login for a member of staff still with the council. A disabled login is enabled
    again with the new password; an enabled one is a :class:`Conflict`."""
    authorise(actor, Action.MANAGE_USERS)
    _check_password(password)
    if not (admin or reads_cases):
        raise Invalid("a login that reads no case must be an admin (--admin), or it can do nothing")
    now = rt.clock()
    hashed = hash_password(rt.settings, password)  # before the transaction: it is slow
    with rt.writing() as uow:
        person = uow.session.get(Staff, staff_id)
        if person is None:
            raise NotFound(f"no member of staff {staff_id!r}: import the staff list first")
        if not person.present_on(rt.book.local_date(now)):
            raise Conflict(f"{staff_id} has left: a leaver cannot have a login")
        user = uow.session.get(User, staff_id, with_for_update=True)
        created = user is None
        if user is None:
            user = User(staff_id=staff_id, created_at=now)
            uow.session.add(user)
        elif user.disabled_at is None:
            raise Conflict(f"{staff_id} has a login already (`caseloop users disable {staff_id}` first)")
        user.password_hash, user.is_admin, user.reads_cases = hashed, admin, reads_cases
        user.disabled_at = None
        login = Login(staff_id, person.role, person.team, admin, reads_cases, created)
        uow.commit()
    return login


def disable_user(rt: Runtime, actor: Actor, staff_id: str) -> int:
    """Disable a login and end its sessions at once; returns how many sessions were ended."""
    authorise(actor, Action.MANAGE_USERS)
    now = rt.clock()
    with rt.writing() as uow:
        user = uow.session.get(User, staff_id, with_for_update=True)
        if user is None:
            raise NotFound(f"{staff_id} has no login")
        if user.disabled_at is not None:
            raise Conflict(f"the login of {staff_id} was disabled already")
        user.disabled_at = now
        ended = _end_sessions(uow.session, staff_id, now, "disabled")
        uow.commit()
    return ended


@dataclass(frozen=True)
class LoginView:
    """A login as the admin page lists it (never its password's hash)."""

    staff_id: str
    name: str
    admin: bool
    reads_cases: bool
    created: datetime
    disabled: datetime | None
    last_sign_in: datetime | None  # the start of its latest session, if it ever had one


def users_page(rt: Runtime, actor: Actor, offset: int, limit: int) -> Slice[LoginView]:
    """Logins by staff id, enabled and disabled, one page at a time."""
    authorise(actor, Action.MANAGE_USERS)
    last = (
        select(func.max(WebSession.created_at))
        .where(WebSession.staff_id == User.staff_id)
        .correlate(User)
        .scalar_subquery()
    )
    query = (
        select(
            User.staff_id,
            Staff.name,
            User.is_admin,
            User.reads_cases,
            User.created_at,
            User.disabled_at,
            last,
        )
        .join(Staff, Staff.id == User.staff_id)
        .order_by(User.staff_id)
    )
    with rt.reading() as uow:
        total, rows = page_of(uow.session, query, offset, limit)
    items = [
        LoginView(sid, name, admin or not reads, reads, created, disabled, seen)
        for sid, name, admin, reads, created, disabled, seen in rows
    ]
    return Slice(items, total, offset, limit)


def _end_sessions(session: Session, staff_id: str, now: datetime, why: str) -> int:
    result = session.execute(
        update(WebSession)
        .where(WebSession.staff_id == staff_id, WebSession.ended_at.is_(None))
        .values(ended_at=now, ended_why=why)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def _actor(session: Session, user: User, today: date) -> Actor:
    """The actor a login acts as (Forbidden for a leaver, from ``staff_member``)."""
    person = staff_member(session, user.staff_id, today)
    if not user.reads_cases:
        return replace(person, role=None, team=None, teams=frozenset(), admin=True)
    return replace(person, admin=user.is_admin)


# -- logging in --------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewSession:
    cookie_value: str  # the random id, for the browser; only its hash is stored
    csrf_token: str
    actor: Actor


def session_key(cookie_value: str) -> str:
    return hashlib.sha256(cookie_value.encode()).hexdigest()


def log_in(
    rt: Runtime, username: str, password: str, address: str, *, replacing: str | None = None
) -> NewSession:
    """Check a staff id and password and start a session (ending ``replacing``, the key of the
    session the browser had, so an old id never survives a login). Refused with :class:`TooManyAttempts`
    before the password is even checked once the account or address has failed too often."""
    settings = rt.settings
    now = rt.clock()
    username, address = username.strip()[:_FIELD], address[:_FIELD]
    since = now - timedelta(minutes=settings.login_window_minutes)
    with rt.reading() as uow:
        by_account = _failures(uow.session, LoginAttempt.username == username, since)
        by_address = _failures(uow.session, LoginAttempt.address == address, since)
        if (
            by_account >= settings.login_failures_per_account
            or by_address >= settings.login_failures_per_address
        ):
            raise TooManyAttempts(settings.login_window_minutes)
        user = uow.session.get(User, username) if username else None
        stored = user.password_hash if user is not None else None
    hasher = _hasher(settings.password_hashing)
    # Verified outside any transaction (argon2 is slow); an unknown id is checked against a decoy.
    matches = hasher.verify(password, stored or _decoy(settings.password_hashing)) and stored is not None
    with rt.writing() as uow:
        actor: Actor | None = None
        if matches:
            user = uow.session.get(User, username)
            if user is not None and user.disabled_at is None:
                try:
                    actor = _actor(uow.session, user, rt.book.local_date(now))
                except Forbidden:  # a leaver
                    actor = None
        uow.session.add(LoginAttempt(username=username, address=address, at=now, succeeded=actor is not None))
        if actor is None:
            uow.commit()
            raise LoginRefused()
        if replacing:
            uow.session.execute(
                update(WebSession)
                .where(WebSession.id == replacing, WebSession.ended_at.is_(None))
                .values(ended_at=now, ended_why="replaced")
            )
        cookie_value, csrf_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        uow.session.add(
            WebSession(
                id=session_key(cookie_value),
                staff_id=username,
                csrf_token=csrf_token,
                created_at=now,
                last_seen_at=now,
            )
        )
        uow.commit()
    return NewSession(cookie_value, csrf_token, actor)


def _failures(session: Session, who: ColumnElement[bool], since: datetime) -> int:
    failed = (
        select(func.count())
        .select_from(LoginAttempt)
        .where(who, LoginAttempt.at > since, LoginAttempt.succeeded.is_(False))
    )
    return int(session.scalar(failed) or 0)


# -- every request -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedIn:
    actor: Actor
    csrf_token: str
    key: str  # the session row's id


def signed_in(rt: Runtime, cookie_value: str) -> SignedIn | None:
    """The session behind a cookie, if it is still good; ends it (with the reason) if not."""
    key = session_key(cookie_value)
    now = rt.clock()
    settings = rt.settings
    with rt.reading() as uow:
        row = uow.session.get(WebSession, key)
        if row is None or row.ended_at is not None:
            return None
        user = uow.session.get(User, row.staff_id)
        actor: Actor | None = None
        why: str | None = "disabled"
        if user is not None and user.disabled_at is None:
            try:
                actor = _actor(uow.session, user, rt.book.local_date(now))
                why = _timed_out(row, now, settings)
            except Forbidden:
                why = "left"
        if why is None and now - row.last_seen_at < LAST_SEEN_EVERY and actor is not None:
            return SignedIn(actor, row.csrf_token, key)
        csrf_token = row.csrf_token
    with rt.writing() as uow:
        values = {"ended_at": now, "ended_why": why} if why else {"last_seen_at": now}
        uow.session.execute(
            update(WebSession).where(WebSession.id == key, WebSession.ended_at.is_(None)).values(**values)
        )
        uow.commit()
    return None if why or actor is None else SignedIn(actor, csrf_token, key)


def _timed_out(row: WebSession, now: datetime, settings: Settings) -> str | None:
    if now - row.created_at >= timedelta(hours=settings.session_absolute_hours):
        return "absolute time-out"
    if now - row.last_seen_at >= timedelta(minutes=settings.session_idle_minutes):
        return "idle time-out"
    return None


def log_out(rt: Runtime, key: str) -> None:
    """End a session (``SignedIn.key``); nothing, if it had ended."""
    with rt.writing() as uow:
        uow.session.execute(
            update(WebSession)
            .where(WebSession.id == key, WebSession.ended_at.is_(None))
            .values(ended_at=rt.clock(), ended_why="logged out")
        )
        uow.commit()
