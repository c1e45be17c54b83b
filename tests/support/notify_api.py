"""What the local Notify checks and stores: its JWT rules, request validation and records.

Messages and error class names follow GOV.UK Notify's v2 API documentation, so the official
client sees the bodies it would see from Notify.
"""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jwt

RATE_LIMIT = "Exceeded rate limit for key type LIVE of 3000 requests per 60 seconds"
DAILY_LIMIT = "Exceeded send limits (1000) for today"
BAD_POSTAGE = "postage invalid. It must be first, second, economy, europe or rest-of-world."
PRECOMPILED_TEMPLATE = "0f1d6a3e-8a4b-4c6e-9a44-3b4f4c9c1f00"
POSTAGE = ("first", "second", "economy", "europe", "rest-of-world")
DEFAULT_ERRORS = {
    400: ("BadRequestError", "Can't send to this recipient using a team-only API key"),
    403: ("AuthError", "Invalid token: API key revoked"),
    429: ("RateLimitError", RATE_LIMIT),
    500: ("Exception", "Internal server error"),
    503: ("Exception", "Service unavailable"),
}
FINAL = {
    "delivered",
    "permanent-failure",
    "temporary-failure",
    "technical-failure",
    "returned-letter",
    "validation-failed",
    "virus-scan-failed",
    "cancelled",
}
JWT_BOUND = 30  # seconds either side, as Notify allows
CLOCK_SKEW = "Error: Your system clock must be accurate to within 30 seconds"


class NotifyRefusal(Exception):
    """An error answer, in Notify's shape: ``{"status_code": …, "errors": [{"error", "message"}]}``."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"status_code": status, "errors": [{"error": error, "message": message}]}


@dataclass
class Notification:
    id: str
    type: str
    reference: str | None
    status: str
    created_at: str
    template_id: str
    email_address: str | None = None
    personalisation: dict[str, str] = field(default_factory=dict)
    subject: str | None = None
    body: str = ""
    pdf: bytes = b""
    postage: str | None = None
    completed_at: str | None = None

    def as_api(self, base_url: str) -> dict[str, Any]:
        """The shape of Notify's ``GET /v2/notifications/<id>``."""
        return {
            "id": self.id,
            "reference": self.reference,
            "email_address": self.email_address,
            "phone_number": None,
            **{f"line_{n}": None for n in range(1, 8)},
            "postcode": None,
            "type": self.type,
            "status": self.status,
            "template": template_ref(base_url, self.template_id),
            "body": self.body,
            "subject": self.subject,
            "created_at": self.created_at,
            "created_by_name": None,
            "sent_at": self.created_at,
            "completed_at": self.completed_at,
            "scheduled_for": None,
            "postage": self.postage,
            "one_click_unsubscribe_url": None,
        }


def template_ref(base_url: str, template_id: str) -> dict[str, Any]:
    return {"id": template_id, "version": 1, "uri": f"{base_url}/v2/template/{template_id}"}


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_uuid(value: Any, name: str) -> None:
    try:
        uuid.UUID(str(value))
    except ValueError as exc:
        raise NotifyRefusal(400, "ValidationError", f"{name} is not a valid UUID") from exc


def authenticate(header: str | None, service_id: str, secret: str) -> None:
    """What Notify checks before anything else: a Bearer JWT, HS256, ``iss`` = service, fresh ``iat``."""
    if not header:
        raise NotifyRefusal(401, "AuthError", "Unauthorized: authentication token must be provided")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise NotifyRefusal(401, "AuthError", "Unauthorized: authentication bearer scheme must be used")
    try:
        unverified = jwt.decode(token, options={"verify_signature": False}, algorithms=["HS256"])
    except jwt.PyJWTError as exc:
        raise NotifyRefusal(403, "AuthError", "Invalid token: signature") from exc
    if unverified.get("iss") != service_id:
        raise NotifyRefusal(403, "AuthError", "Invalid token: service not found")
    try:
        claims = jwt.decode(token, key=secret, algorithms=["HS256"], options={"require": ["iss", "iat"]})
    except jwt.PyJWTError as exc:
        raise NotifyRefusal(403, "AuthError", "Invalid token: API key not found") from exc
    if abs(time.time() - int(claims["iat"])) > JWT_BOUND:
        raise NotifyRefusal(403, "AuthError", CLOCK_SKEW)


def email_from(data: dict[str, Any], templates: dict[str, tuple[str, str]]) -> Notification:
    """A ``POST /v2/notifications/email`` body, checked, with the template's placeholders filled."""
    address, template_id = data.get("email_address"), data.get("template_id")
    if not isinstance(address, str) or "@" not in address:
        raise NotifyRefusal(400, "ValidationError", "email_address Not a valid email address")
    check_uuid(template_id, "template_id")
    if template_id not in templates:
        raise NotifyRefusal(400, "BadRequestError", "Template not found")
    personalisation = data.get("personalisation") or {}
    subject, body = templates[template_id]
    for name in ("subject", "body"):
        if name not in personalisation:
            raise NotifyRefusal(400, "BadRequestError", f"Missing personalisation: {name}")
        subject, body = (t.replace(f"(({name}))", str(personalisation[name])) for t in (subject, body))
    return Notification(
        id=str(uuid.uuid4()),
        type="email",
        reference=data.get("reference"),
        status="created",
        created_at=now(),
        template_id=template_id,
        email_address=address,
        personalisation=dict(personalisation),
        subject=subject,
        body=body,
    )


def letter_from(data: dict[str, Any]) -> Notification:
    """A precompiled ``POST /v2/notifications/letter`` body: reference, base64 PDF, postage."""
    if "content" not in data:
        raise NotifyRefusal(400, "BadRequestError", "this fake takes precompiled letters only")
    reference = data.get("reference")
    if not isinstance(reference, str) or not reference:
        raise NotifyRefusal(400, "ValidationError", "reference is a required property")
    try:
        pdf = base64.b64decode(data["content"], validate=True)
    except (binascii.Error, TypeError) as exc:
        raise NotifyRefusal(400, "ValidationError", "Letter content is not a valid PDF") from exc
    if not pdf.startswith(b"%PDF-"):
        raise NotifyRefusal(400, "ValidationError", "Letter content is not a valid PDF")
    postage = data.get("postage", "second")
    if postage not in POSTAGE:
        raise NotifyRefusal(400, "ValidationError", BAD_POSTAGE)
    return Notification(
        id=str(uuid.uuid4()),
        type="letter",
        reference=reference,
        status="pending-virus-check",
        created_at=now(),
        template_id=PRECOMPILED_TEMPLATE,
        pdf=pdf,
        postage=postage,
        subject="Pre-compiled PDF",
    )
