"""A local GOV.UK Notify: a real HTTP server speaking enough of Notify's v2 API for its client.

It runs ``http.server.ThreadingHTTPServer`` in a thread on 127.0.0.1 (a free port) and checks what
Notify checks first: the ``Authorization: Bearer`` JWT, signed HS256 with the key's secret, whose
``iss`` is the service id and whose ``iat`` is within 30 seconds. An API key is
``<key name>-<service id>-<secret>``, as the official client slices it.

Endpoints: ``POST /v2/notifications/email``, ``POST /v2/notifications/letter`` (precompiled: a
base64 PDF), ``GET /v2/notifications/<id>`` and ``GET /v2/notifications?reference=…``. Tests can make
the next requests fail with Notify's own error bodies (:meth:`FakeNotify.fail_next`) and move a
notification's status on (:meth:`FakeNotify.set_status`).
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.notify_api import (
    DAILY_LIMIT,
    DEFAULT_ERRORS,
    FINAL,
    RATE_LIMIT,
    Notification,
    NotifyRefusal,
    authenticate,
    check_uuid,
    email_from,
    letter_from,
    now,
    template_ref,
)

__all__ = ["DAILY_LIMIT", "RATE_LIMIT", "FakeNotify", "Notification"]


@dataclass
class Failure:
    status: int
    error: str
    message: str
    after_storing: bool = False  # Notify kept the message, then failed to answer
    raw: str | None = None  # answer with this text instead of a JSON body (a proxy's error page)


class FakeNotify:
    """One Notify service with one API key; ``with FakeNotify() as notify:`` starts and stops it."""

    def __init__(self, email_templates: tuple[str, ...] = ()) -> None:
        self.service_id, self.secret = str(uuid.uuid4()), str(uuid.uuid4())
        # Each email template is Notify's "((subject))" / "((body))" pair, as caseloop's is.
        self.email_templates = {t: ("((subject))", "((body))") for t in email_templates}
        self.notifications: dict[str, Notification] = {}
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status answered)
        self._failures: list[Failure] = []
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- test controls -------------------------------------------------------------------------

    @property
    def api_key(self) -> str:
        return self.key_for(self.service_id, self.secret)

    @staticmethod
    def key_for(service_id: str, secret: str) -> str:
        return f"caseloop_test-{service_id}-{secret}"

    @property
    def base_url(self) -> str:
        assert self._server is not None, "the fake Notify is not running"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        error: str | None = None,
        message: str | None = None,
        after_storing: bool = False,
        raw: str | None = None,
    ) -> None:
        """Answer the next ``times`` authenticated requests with ``status`` and a Notify error body.

        ``after_storing``: a send is stored first, then answered with the error (Notify failed late).
        ``raw``: the answer's body is this text, not JSON.
        """
        default_error, default_message = DEFAULT_ERRORS.get(status, ("Exception", "Error"))
        with self.lock:
            self._failures.extend(
                Failure(status, error or default_error, message or default_message, after_storing, raw)
                for _ in range(times)
            )

    def set_status(self, notification_id: str, status: str) -> None:
        with self.lock:
            item = self.notifications[notification_id]
            item.status = status
            item.completed_at = now() if status in FINAL else None

    def of_type(self, kind: str) -> list[Notification]:
        with self.lock:
            return [n for n in self.notifications.values() if n.type == kind]

    def posts(self) -> int:
        """How many sends reached the server, whatever it answered."""
        with self.lock:
            return sum(1 for method, _, _ in self.requests if method == "POST")

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FakeNotify:
        fake = self

        class Handler(_Handler):
            notify = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="fake-notify", daemon=True).start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeNotify:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the API -------------------------------------------------------------------------------

    def next_failure(self) -> Failure | None:
        with self.lock:
            return self._failures.pop(0) if self._failures else None

    def post(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        item = email_from(data, self.email_templates) if kind == "email" else letter_from(data)
        with self.lock:
            self.notifications[item.id] = item
        if kind == "letter":
            return {"id": item.id, "reference": item.reference, "postage": item.postage}
        return {
            "id": item.id,
            "reference": item.reference,
            "uri": f"{self.base_url}/v2/notifications/{item.id}",
            "template": template_ref(self.base_url, item.template_id),
            "content": {"subject": item.subject, "body": item.body, "from_email": "council@notify.example"},
            "scheduled_for": None,
        }

    def get_one(self, notification_id: str) -> dict[str, Any]:
        check_uuid(notification_id, "notification_id")
        with self.lock:
            item = self.notifications.get(notification_id)
        if item is None:
            raise NotifyRefusal(404, "NoResultFound", "No result found")
        return item.as_api(self.base_url)

    def get_many(self, query: dict[str, list[str]]) -> dict[str, Any]:
        wanted = {k: v[0] for k, v in query.items() if k in ("reference", "template_type", "status")}
        with self.lock:
            found = [
                n
                for n in reversed(list(self.notifications.values()))  # newest first, as Notify lists
                if all(getattr(n, "type" if k == "template_type" else k) == v for k, v in wanted.items())
            ]
        current = f"{self.base_url}/v2/notifications"
        return {"notifications": [n.as_api(self.base_url) for n in found], "links": {"current": current}}


class _Handler(BaseHTTPRequestHandler):
    notify: FakeNotify
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: pytest shows what matters
        pass

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def _answer(self, method: str) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        failure: Failure | None = None
        try:
            authenticate(self.headers.get("Authorization"), self.notify.service_id, self.notify.secret)
            failure = self.notify.next_failure()
            if failure is not None and not failure.after_storing:
                raise NotifyRefusal(failure.status, failure.error, failure.message)
            status, body = self._route(method, parts.path, parts.query, raw)
            if failure is not None:
                raise NotifyRefusal(failure.status, failure.error, failure.message)
        except NotifyRefusal as refusal:
            status, body = refusal.status, refusal.body
        with self.notify.lock:
            self.notify.requests.append((method, parts.path, status))
        if failure is not None and failure.raw is not None and status == failure.status:
            payload, kind = failure.raw.encode(), "text/html"
        else:
            payload, kind = json.dumps(body).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _route(self, method: str, path: str, query: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        if method == "POST" and path in ("/v2/notifications/email", "/v2/notifications/letter"):
            try:
                data = json.loads(raw)
            except ValueError as exc:
                raise NotifyRefusal(400, "BadRequestError", "Invalid JSON supplied in POST data") from exc
            if not isinstance(data, dict):
                raise NotifyRefusal(400, "BadRequestError", "Invalid JSON supplied in POST data")
            return 201, self.notify.post(path.rsplit("/", 1)[1], data)
        if method == "GET" and path == "/v2/notifications":
            return 200, self.notify.get_many(parse_qs(query))
        if method == "GET" and path.startswith("/v2/notifications/"):
            return 200, self.notify.get_one(path.removeprefix("/v2/notifications/"))
        raise NotifyRefusal(404, "ResourceNotFound", "The requested URL was not found on the server.")
