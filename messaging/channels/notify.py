"""GOV.UK Notify channels: emails through a template, letters as precompiled PDFs.

Notify's client raises one ``HTTPError`` for everything, so the status code decides:

- 400: the request itself is wrong (bad address, unknown template, team-only key): never retried;
- 403: the API key or the service is refused: never retried, and an error-level alert, because
  every message will fail the same way until a person fixes the key;
- 429: a rate limit (retry after the usual back-off) or the service's daily limit (nothing can
  go before midnight in London, given to the caller as ``not_before``);
- 5xx, timeouts and dropped connections: retried. These outcomes are ambiguous (Notify may have
  stored the message before failing), so the channel first looks the reference up, and a message
  Notify already has is reported as sent rather than sent again.

Notify's ``reference`` is ours: the outbox idempotency key. Notify does not make it unique and keeps
statuses for only seven days, so the outbox stays the record; the reference is how a message is
found again after a crash (:meth:`confirm`). Logs carry references, status codes and Notify's error
class names only: Notify's messages can quote what was sent.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from io import BytesIO
from typing import Any, BinaryIO, Protocol, cast
from zoneinfo import ZoneInfo

from notifications_python_client.errors import APIError
from notifications_python_client.notifications import NotificationsAPIClient

from messaging.channels import DeliveryError, Handover, PermanentDeliveryError, RetryableDeliveryError
from messaging.email import REFERENCE_HEADER, OutgoingEmail
from messaging.letter import OutgoingLetter
from messaging.outbox import OutboxMessage
from workflow.errors import CaseloopError
from workflow.timeutil import Clock, utc_now

log = logging.getLogger(__name__)

NOTIFY_URL = "https://api.notifications.service.gov.uk"
LONDON = ZoneInfo("Europe/London")
# "<key name>-<service id>-<secret>", both UUIDs; the client slices the key the same way.
_UUID = r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}"
_API_KEY = re.compile(rf"^.+-{_UUID}-{_UUID}$")
_DAILY_LIMIT_ERROR = "TooManyRequestsError"  # Notify: "Exceeded send limits (N) for today"


class NotifyRateLimited(RetryableDeliveryError):
    """Notify answered 429. ``not_before`` is set when the daily limit was reached: nothing more
    can be sent before midnight in London; for a plain rate limit it is None (the usual back-off)."""

    def __init__(self, message: str, not_before: datetime | None) -> None:
        super().__init__(message, 429)
        self.not_before = not_before


class _Client(Protocol):
    """The part of ``NotificationsAPIClient`` used here, typed (the client has no annotations)."""

    def send_email_notification(
        self, *, email_address: str, template_id: str, personalisation: dict[str, str], reference: str
    ) -> dict[str, Any]: ...

    def send_precompiled_letter_notification(
        self, *, reference: str, pdf_file: BinaryIO, postage: str
    ) -> dict[str, Any]: ...

    def get_all_notifications(self, *, template_type: str, reference: str) -> dict[str, Any]: ...

    def get_notification_by_id(self, id: str) -> dict[str, Any]: ...


def next_london_midnight(now: datetime) -> datetime:
    """The next midnight in Europe/London after ``now``, as a UTC instant (Notify's day boundary)."""
    if now.tzinfo is None:
        raise ValueError("refusing a naive datetime")
    tomorrow = now.astimezone(LONDON).date() + timedelta(days=1)
    return datetime.combine(tomorrow, time(0), tzinfo=LONDON).astimezone(UTC)


def _errors(exc: APIError) -> list[tuple[str, str]]:
    """Notify's error body as (error class name, message) pairs; empty if there is no such body."""
    try:
        body = exc.response.json() if exc.response is not None else {}
        return [(str(e.get("error", "")), str(e.get("message", ""))) for e in body.get("errors", [])]
    except (ValueError, AttributeError, TypeError):
        return []


class _NotifyChannel:
    template_type: str
    name: str

    def __init__(
        self, api_key: str, *, base_url: str = NOTIFY_URL, timeout: float = 30.0, clock: Clock = utc_now
    ) -> None:
        if not _API_KEY.match(api_key):
            # Never echo the key: it is a secret.
            raise CaseloopError("the GOV.UK Notify API key must look like <name>-<service id>-<secret>")
        self._api_key, self.base_url, self.timeout, self.clock = api_key, base_url, timeout, clock

    def _client(self) -> _Client:
        # A client per call: Notify's client is not thread-safe, and it holds no state worth sharing.
        factory = cast(Callable[..., _Client], NotificationsAPIClient)
        return factory(self._api_key, base_url=self.base_url, timeout=self.timeout)

    def _send(
        self, reference: str, on_handover: Handover, request: Callable[[_Client], dict[str, Any]]
    ) -> str:
        client = self._client()
        on_handover()
        failure: DeliveryError
        try:
            response = request(client)
        except APIError as exc:
            failure = self._classify(exc, reference)
        else:
            if isinstance(response, dict) and response.get("id"):
                return str(response["id"])
            failure = RetryableDeliveryError("Notify's answer had no notification id")
        if isinstance(failure, RetryableDeliveryError) and failure.code != 429:
            # 5xx or no answer: Notify may have stored it before failing. Look before retrying.
            found = self._lookup(reference)
            if found is not None:
                log.warning("%s: %s was accepted despite a failed answer", self.name, reference)
                return found
        raise failure

    def _classify(self, exc: APIError, reference: str) -> DeliveryError:
        names = ",".join(name for name, _ in _errors(exc)) or "-"
        detail = "; ".join(f"{name}: {message}" for name, message in _errors(exc))
        if exc.response is None:
            return RetryableDeliveryError(f"Notify could not be reached ({type(exc.__cause__).__name__})")
        status = exc.status_code
        if status == 400:
            return PermanentDeliveryError(f"Notify refused the message (400): {detail}", 400)
        if status == 403:
            log.error(
                "ALERT %s: Notify refused our API key (403, %s) sending %s; nothing will go until "
                "the key or the service is fixed",
                self.name,
                names,
                reference,
            )
            return PermanentDeliveryError(f"Notify refused the API key (403): {detail}", 403)
        if status == 429:
            if any(name == _DAILY_LIMIT_ERROR or "for today" in text for name, text in _errors(exc)):
                resume = next_london_midnight(self.clock())
                log.warning(
                    "%s: Notify's daily limit reached sending %s; waiting until %s",
                    self.name,
                    reference,
                    resume.isoformat(),
                )
                return NotifyRateLimited(f"Notify's daily limit was reached: {detail}", resume)
            return NotifyRateLimited(f"Notify's rate limit was exceeded: {detail}", None)
        if status >= 500:
            return RetryableDeliveryError(f"Notify failed ({status}): {detail}", status)
        if 200 <= status < 300:  # accepted, but the answer was not JSON: look it up, then retry
            return RetryableDeliveryError(f"Notify's answer ({status}) could not be read", status)
        # Anything else (401, 404, 413…) is not going to change by itself.
        return PermanentDeliveryError(f"Notify answered {status}: {detail}", status)

    def _find(self, reference: str) -> list[dict[str, Any]]:
        """Our notifications with this reference, newest first (Notify's order)."""
        found = self._client().get_all_notifications(template_type=self.template_type, reference=reference)
        return list(found["notifications"])

    def _lookup(self, reference: str) -> str | None:
        """The id of the newest notification with this reference; None if none or if Notify is down."""
        try:
            notifications = self._find(reference)
            return str(notifications[0]["id"]) if notifications else None
        except (APIError, KeyError, TypeError):
            return None

    def confirm(self, message: OutboxMessage) -> bool | None:
        """Whether Notify has this outbox message (found by its idempotency key, our reference).

        None if Notify cannot be asked. Notify forgets notifications after seven days, so this is
        only meaningful soon after a crash, which is when the stale-send sweeper asks.
        """
        return self.confirm_reference(message.idempotency_key)

    def confirm_reference(self, reference: str) -> bool | None:
        """Whether Notify has a message of ours with ``reference``; None if it cannot say."""
        try:
            return bool(self._find(reference))
        except (APIError, KeyError, TypeError) as exc:
            code = exc.status_code if isinstance(exc, APIError) and exc.response is not None else None
            log.warning("%s: cannot confirm %s with Notify (code %s)", self.name, reference, code)
            return None

    def fetch_status(self, provider_ref: str) -> str:
        """Notify's status for a notification id: ``delivered``, ``permanent-failure``, …

        Raises a ``PermanentDeliveryError`` (code 404) once Notify no longer has it.
        """
        try:
            return str(self._client().get_notification_by_id(provider_ref)["status"])
        except APIError as exc:
            raise self._classify(exc, provider_ref) from exc
        except (KeyError, TypeError) as exc:
            raise RetryableDeliveryError("Notify's answer had no status") from exc


class NotifyEmailChannel(_NotifyChannel):
    """Emails through one Notify template whose content is ``((subject))`` and ``((body))``."""

    name = "notify_email"
    template_type = "email"

    def __init__(
        self,
        api_key: str,
        template_id: str,
        *,
        base_url: str = NOTIFY_URL,
        timeout: float = 30.0,
        clock: Clock = utc_now,
    ) -> None:
        super().__init__(api_key, base_url=base_url, timeout=timeout, clock=clock)
        self.template_id = template_id

    def send(self, item: OutgoingEmail | OutgoingLetter, on_handover: Handover) -> str:
        if not isinstance(item, OutgoingEmail):
            raise PermanentDeliveryError("the notify_email channel sends emails, not posted letters")
        reference = item.headers.get(REFERENCE_HEADER)
        if not reference:
            raise PermanentDeliveryError(f"the email has no {REFERENCE_HEADER} header for Notify's reference")
        personalisation = {"subject": item.subject, "body": item.text}
        return self._send(
            reference,
            on_handover,
            lambda client: client.send_email_notification(
                email_address=item.to,
                template_id=self.template_id,
                personalisation=personalisation,
                reference=reference,
            ),
        )


class NotifyLetterChannel(_NotifyChannel):
    """Letters as precompiled PDFs: Notify prints and posts what we rendered, address and all."""

    name = "notify_letter"
    template_type = "letter"

    def send(self, item: OutgoingEmail | OutgoingLetter, on_handover: Handover) -> str:
        if not isinstance(item, OutgoingLetter):
            raise PermanentDeliveryError("the notify_letter channel posts letters, not emails")
        return self._send(
            item.reference,
            on_handover,
            lambda client: client.send_precompiled_letter_notification(
                reference=item.reference, pdf_file=BytesIO(item.pdf), postage=item.postage
            ),
        )
