"""Every response, a 404 included, carries the security headers; health needs no I/O."""

from __future__ import annotations

from tests.web.conftest import LiveServer
from web.headers import SECURITY_HEADERS


def test_health_and_the_security_headers_on_every_response(live_server: LiveServer) -> None:
    with live_server.client() as http:
        ok = http.get("/healthz")
        missing = http.get("/no-such-page")
    assert (ok.status_code, ok.json()) == (200, {"status": "ok"})
    assert missing.status_code == 404
    for response in (ok, missing):
        for name, value in SECURITY_HEADERS.items():
            assert response.headers[name] == value
        assert response.headers["cache-control"] == "no-store"
        assert "server" not in response.headers
    csp = ok.headers["content-security-policy"]
    assert "http" not in csp and "frame-ancestors 'none'" in csp  # no external origin at all
