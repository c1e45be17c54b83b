"""API tokens for the systems that call caseloop: made, listed, revoked, and recognised on a request.

A token is shown once, when it is made; only its SHA-256 is stored. A token carries 256 random
bits, so a fast hash cannot be guessed back (argon2 is for passwords, which people choose). Its
first characters are kept as its prefix, so that a token found in a log or a repository can be
recognised in ``caseloop tokens list`` and revoked.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from services.actors import Actor, Scope, client
from services.authorisation import Action, authorise
from services.paging import Slice, page_of
from services.runtime import Runtime
from workflow import limits
from workflow.access import ApiToken
from workflow.errors import Conflict, Invalid, NotFound

MARK = "cl_"  # every token starts so: secret scanners and people can tell a caseloop token
SHOWN = len(MARK) + 6  # characters kept as the prefix: enough to tell tokens apart, far too few to use
# A token in use is marked as used at most this often: a write per request would make every read of
# the API a write, and on SQLite every write waits for the one lock.
TOUCH_EVERY = timedelta(minutes=1)
_KNOWN_SCOPES = frozenset(s.value for s in Scope)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_LONGEST = 128  # no token we make is longer; anything longer is not looked up at all


class TokenInvalid(Invalid):
    """A token that cannot be made as asked, naming the field that is wrong (``name``,
    ``scopes`` or ``teams``) so a form can point at it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class TokenView:
    name: str
    prefix: str
    scopes: list[str]
    teams: list[str]  # empty: every team
    created: datetime
    last_used: datetime | None
    revoked: datetime | None


@dataclass(frozen=True)
class NewToken:
    view: TokenView
    token: str  # shown once; caseloop keeps only its hash


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create(
    rt: Runtime,
    actor: Actor,
    name: str,
    scopes: Iterable[str],
    teams: Iterable[str] = (),
    now: datetime | None = None,
) -> NewToken:
    """Make a token for the system ``name`` with these scopes, limited to ``teams`` (none: all)."""
    authorise(actor, Action.MANAGE_TOKENS)
    if not _NAME.match(name):
        raise TokenInvalid(
            "name",
            f"token name {name!r}: use 1–64 letters, digits, dots, hyphens or underscores, "
            "starting with a letter or digit (it names the system, and is recorded as the source "
            "of the events it sends)",
        )
    granted = _scopes(scopes)
    limited = _teams(teams)
    token = MARK + secrets.token_urlsafe(32)
    row = ApiToken(
        name=name,
        prefix=token[:SHOWN],
        token_hash=digest(token),
        scopes=[s.value for s in granted],
        teams=limited,
        created_at=now or rt.clock(),
    )
    with rt.writing() as uow:
        if uow.session.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
            raise Conflict(f"a token named {name!r} exists already: revoke it, or choose another name")
        uow.session.add(row)
        uow.session.flush()
        view = _view(row)
        uow.commit()
    return NewToken(view, token)


def _scopes(given: Iterable[str]) -> list[Scope]:
    known = ", ".join(s.value for s in Scope)
    found: list[Scope] = []
    for value in given:
        try:
            scope = Scope(value)
        except ValueError:
            raise TokenInvalid("scopes", f"unknown scope {value!r}: the scopes are {known}") from None
        if scope not in found:
            found.append(scope)
    if not found:
        raise TokenInvalid("scopes", f"a token needs at least one scope ({known})")
    return found


def _teams(given: Iterable[str]) -> list[str]:
    found: list[str] = []
    for team in given:
        team = team.strip()
        if not team or len(team) > limits.TEAM or not team.isprintable():
            raise TokenInvalid("teams", f"team {team!r}: a team is 1–{limits.TEAM} printable characters")
        if team not in found:
            found.append(team)
    return found


def list_tokens(rt: Runtime, actor: Actor) -> list[TokenView]:
    """Every token, revoked ones included (a revoked token stays listed: it was used once)."""
    authorise(actor, Action.MANAGE_TOKENS)
    with rt.reading() as uow:
        return [_view(t) for t in uow.session.scalars(select(ApiToken).order_by(ApiToken.name))]


def tokens_page(rt: Runtime, actor: Actor, offset: int, limit: int) -> Slice[TokenView]:
    """The tokens (as :func:`list_tokens`) by name, one page at a time."""
    authorise(actor, Action.MANAGE_TOKENS)
    with rt.reading() as uow:
        total, rows = page_of(uow.session, select(ApiToken).order_by(ApiToken.name), offset, limit)
        items = [_view(row) for (row,) in rows]
    return Slice(items, total, offset, limit)


def revoke(rt: Runtime, actor: Actor, name: str, now: datetime | None = None) -> TokenView:
    """Stop the token ``name`` at once: its next request is refused."""
    authorise(actor, Action.MANAGE_TOKENS)
    with rt.writing() as uow:
        row = uow.session.scalar(select(ApiToken).where(ApiToken.name == name).with_for_update())
        if row is None:
            raise NotFound(f"no token named {name!r}")
        if row.revoked_at is not None:
            raise Conflict(f"the token {name!r} was revoked already, at {row.revoked_at.isoformat()}")
        row.revoked_at = now or rt.clock()
        view = _view(row)
        uow.commit()
    return view


def caller(rt: Runtime, presented: str, now: datetime | None = None) -> Actor | None:
    """The system a bearer token belongs to, or None for a token that is unknown or revoked.

    The token is looked up by its hash, so the token itself is never compared (nor kept)."""
    if not presented.startswith(MARK) or len(presented) > _LONGEST:
        return None
    now = now or rt.clock()
    with rt.reading() as uow:
        row = uow.session.scalar(select(ApiToken).where(ApiToken.token_hash == digest(presented)))
        if row is None or row.revoked_at is not None:
            return None
        # A scope a later version no longer knows grants nothing.
        granted = {Scope(s) for s in row.scopes if s in _KNOWN_SCOPES}
        actor = client(row.name, granted, set(row.teams))
        stale = row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY
        token_id = row.id
    if stale:
        _touch(rt, token_id, now)
    return actor


def _touch(rt: Runtime, token_id: int, now: datetime) -> None:
    # Conditional, so several processes seeing the same stale time still change the row once.
    with rt.writing() as uow:
        uow.session.execute(
            update(ApiToken)
            .where(
                ApiToken.id == token_id,
                or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= now - TOUCH_EVERY),
            )
            .values(last_used_at=now)
        )
        uow.commit()


def _view(row: ApiToken) -> TokenView:
    return TokenView(
        name=row.name,
        prefix=row.prefix,
        scopes=list(row.scopes),
        teams=list(row.teams),
        created=row.created_at,
        last_used=row.last_used_at,
        revoked=row.revoked_at,
    )
