"""Who may reach caseloop over HTTP: logins for members of staff, their sessions, and the API
tokens of the systems that talk to it.

Only hashes are stored: a password's argon2 hash, a session cookie's and an API token's SHA-256
(both are long random values, so a fast hash cannot be guessed back). A login belongs to a member
of the staff directory; a leaver's login and sessions end with them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

import workflow.staff  # noqa: F401  (the staff table the logins refer to)
from workflow.db import Base, UTCDateTime


class User(Base):
    """A login for a member of staff (``staff.id`` is the username)."""

    __tablename__ = "users"

    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id"), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    # False for an admin-only login: it manages users and tokens and reads no case at all, whatever
    # the staff directory says of its role.
    reads_cases: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebSession(Base):
    """A signed-in browser: the cookie holds a random id, this row its hash and its limits."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the cookie's value
    staff_id: Mapped[str] = mapped_column(ForeignKey("users.staff_id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_why: Mapped[str | None] = mapped_column(String(32))


class LoginAttempt(Base):
    """Each try at logging in, for the rate limit per account and per address (no password kept)."""

    __tablename__ = "login_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    succeeded: Mapped[bool] = mapped_column(Boolean)

    __table_args__ = (
        Index("ix_login_attempts_username", "username", "at"),
        Index("ix_login_attempts_address", "address", "at"),
    )


class ApiToken(Base):
    """A system's bearer token: a name, its scopes and (optionally) the teams it is limited to."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # shown in lists, so a leaked token is recognised
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    teams: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class NotifyReceipt(Base):
    """A delivery receipt GOV.UK Notify posted to us, stored raw as it came (Notify retries, and
    receipts arrive twice and out of order: each is kept, and applied at most once)."""

    __tablename__ = "notify_receipts"

    id: Mapped[int] = mapped_column(primary_key=True)
    notify_id: Mapped[str] = mapped_column(String(64), index=True)
    reference: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32))
    raw: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    applied: Mapped[bool] = mapped_column(Boolean, default=False)
    attempt: Mapped[int] = mapped_column(Integer, default=1)

    # One row per notification and status: a retried receipt counts ``attempt`` up instead.
    __table_args__ = (Index("ux_notify_receipts_id_status", "notify_id", "status", unique=True),)
