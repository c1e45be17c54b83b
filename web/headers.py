"""Security headers on every response, whatever route (or error) produced it.

A plain ASGI middleware, not Starlette's ``BaseHTTPMiddleware``, so streaming responses and
background tasks are not buffered and every response passes through it, errors included.
"""

from __future__ import annotations

import re

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Nothing is loaded from another origin: no CDN, no fonts or scripts from elsewhere.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' data:",
        "style-src 'self'",
        "script-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    # A case reference in a URL never leaves for another site in a Referer. Not "no-referrer":
    # under it browsers send `Origin: null` with our own forms, which the CSRF check must refuse.
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


# The one exception to "never framed": a letter's own content, shown inside its review page
# (/letters/{id}) in an iframe. Only these two routes may be framed, and only by our own pages
# ('self', SAMEORIGIN); every other response keeps DENY. The HTML of a letter is also sandboxed
# (no scripts, no forms, no plugins, an origin of its own): it is the recipient's email, not a page
# of ours, and it may keep its own inline <style> but nothing else. The PDF is not sandboxed:
# browsers refuse to show a PDF in a sandboxed document.
LETTER_PDF = re.compile(r"/letters/[0-9]+/pdf")
LETTER_HTML = re.compile(r"/letters/[0-9]+/html")
FRAMED_BY_OUR_PAGES = {
    "content-security-policy": CONTENT_SECURITY_POLICY.replace(
        "frame-ancestors 'none'", "frame-ancestors 'self'"
    ),
    "x-frame-options": "SAMEORIGIN",
}
SANDBOXED_LETTER_HTML = {
    "x-frame-options": "SAMEORIGIN",
    "content-security-policy": "; ".join(
        [
            "default-src 'none'",
            "img-src 'self' data:",
            "style-src 'unsafe-inline'",  # the letter's own <style>; scripts stay refused
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'self'",
            "sandbox",
        ]
    ),
}


def headers_for(path: str, default: dict[str, str]) -> dict[str, str]:
    """The security headers for a response to ``path``: ``default`` but for the letter content."""
    if LETTER_PDF.fullmatch(path):
        return {**default, **FRAMED_BY_OUR_PAGES}
    if LETTER_HTML.fullmatch(path):
        return {**default, **SANDBOXED_LETTER_HTML}
    return default


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, strict_transport: bool = False) -> None:
        self.app = app
        self.headers = dict(SECURITY_HEADERS)
        if strict_transport:  # only where the site is served over HTTPS
            self.headers["strict-transport-security"] = "max-age=31536000; includeSubDomains"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in headers_for(scope["path"], self.headers).items():
                    headers[name] = value
                if "cache-control" not in headers:
                    # Responses carry case data: no shared cache or browser history keeps them.
                    headers["cache-control"] = "no-store"
            await send(message)

        await self.app(scope, receive, with_headers)
