"""Logging in and out through a real uvicorn: sessions backed by their table, CSRF tokens, the
login rate limit, and every way a session ends (logout, a disabled login, a leaver, idling, age).

Time is the runtime's clock, moved by the tests; passwords are hashed with the cheap argon2
setting (production refuses it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from config.settings import Settings
from config.wiring import Runtime, build_runtime
from migrations import upgrade
from services import access
from services.actors import SYSTEM
from services.people import leave
from tests.factories import MovableClock, import_staff
from tests.web.conftest import LiveServer
from web.sessions import LOGIN_COOKIE, SESSION_COOKIE
from workflow.access import WebSession

NOW = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, var_dir=tmp_path / "var", password_hashing="fast")


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    upgrade(settings.database_url)
    rt = build_runtime(settings, MovableClock(NOW))
    import_staff(rt)  # SM1 over TM1 over W1 and W2, team front-door
    for sid in ("W1", "W2", "TM1"):
        access.add_user(rt, SYSTEM, sid, PASSWORD)
    yield rt
    rt.close()


def clock(rt: Runtime) -> MovableClock:
    assert isinstance(rt.clock, MovableClock)
    return rt.clock


def token_in(page: httpx.Response) -> str:
    # The last on the page: the sign-out form in the header carries the session's token first.
    found = TOKEN.findall(page.text)
    assert found, page.text
    return str(found[-1])


def without_tokens(text: str) -> str:
    """A page's text without its form tokens: random letters and digits, which could hold any
    short reference an assertion looks for."""
    return TOKEN.sub('name="csrf_token" value=""', text)


def log_in(http: httpx.Client, username: str, password: str = PASSWORD) -> httpx.Response:
    form = http.get("/login")
    assert form.status_code == 200
    fields = {"username": username, "password": password, "csrf_token": token_in(form)}
    return http.post("/login", data=fields)


def signed_in_as(http: httpx.Client) -> str | None:
    page = http.get("/")
    if page.status_code == 303:
        assert page.headers["location"] == "/login"
        return None
    assert page.status_code == 200
    found = re.search(r"signed in as <strong>([^<]+)</strong>", page.text)
    assert found, page.text
    return found.group(1)


def sessions_of(rt: Runtime, staff_id: str) -> list[WebSession]:
    with rt.reading() as uow:
        return list(uow.session.scalars(select(WebSession).where(WebSession.staff_id == staff_id)))


def test_log_in_and_out_and_the_old_cookie_no_longer_works(live_server: LiveServer) -> None:
    rt = live_server.runtime
    with live_server.client() as http:
        assert signed_in_as(http) is None
        done = log_in(http, "W1")
        assert (done.status_code, done.headers["location"]) == (303, "/")
        cookie = done.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
        assert "secure" not in cookie  # CASELOOP_COOKIE_SECURE is off outside production
        assert signed_in_as(http) == "W1"
        old = http.cookies[SESSION_COOKIE]
        # The cookie holds a random id and its signature, never the stored key or a name.
        [row] = sessions_of(rt, "W1")
        assert row.id not in old and "W1" not in old
        home = http.get("/")
        out = http.post("/logout", data={"csrf_token": token_in(home)})
        assert (out.status_code, out.headers["location"]) == (303, "/login")
        assert signed_in_as(http) is None
    with live_server.client(cookies={SESSION_COOKIE: old}) as replay:
        assert signed_in_as(replay) is None  # a copied cookie is worth nothing after logout
    [row] = sessions_of(rt, "W1")
    assert row.ended_why == "logged out"


def test_a_forged_or_tampered_cookie_signs_in_nobody(live_server: LiveServer) -> None:
    with live_server.client() as http:
        log_in(http, "W1")
        value = http.cookies[SESSION_COOKIE]
    random_id, _, mac = value.rpartition(".")

    def other_first(text: str) -> str:
        # The first character, not the last: a base64 text's last character may carry only
        # padding bits, so changing it can leave the same bytes.
        return ("B" if text[0] != "B" else "C") + text[1:]

    for forged in (random_id, f"{random_id}.{other_first(mac)}", f"{other_first(random_id)}.{mac}"):
        with live_server.client(cookies={SESSION_COOKIE: forged}) as other:
            assert signed_in_as(other) is None


def test_an_unsafe_request_without_the_sessions_token_is_refused(live_server: LiveServer) -> None:
    with live_server.client() as http:
        log_in(http, "W1")
        token = token_in(http.get("/"))
        for refused in (
            http.post("/logout"),
            http.post("/logout", data={"csrf_token": "not-the-token"}),
            http.post("/logout", data={"csrf_token": token}, headers={"origin": "https://evil.example"}),
            http.post("/logout", headers={"x-csrf-token": token, "origin": "null"}),
        ):
            assert refused.status_code == 403, refused.text
            assert "security token" in refused.text or "another site" in refused.text
            assert refused.headers["x-frame-options"] == "DENY"  # refusals carry the headers too
        assert signed_in_as(http) == "W1"  # nothing was done
        by_header = http.post("/logout", headers={"x-csrf-token": token})
        assert by_header.status_code == 303 and signed_in_as(http) is None
    # Without our cookies (a system with a bearer token) there is no session to forge a request in.
    with live_server.client() as bare:
        assert bare.post("/logout").status_code == 303


def test_the_login_form_needs_its_own_token_so_nobody_logs_a_victim_in(live_server: LiveServer) -> None:
    rt = live_server.runtime
    with live_server.client() as attacker:
        their_token = token_in(attacker.get("/login"))
    with live_server.client() as victim:
        creds = {"username": "W2", "password": PASSWORD}
        for data in (creds, {**creds, "csrf_token": their_token}):
            refused = victim.post("/login", data=data)
            assert refused.status_code == 403 and "came from another site" in refused.text
            assert SESSION_COOKIE not in victim.cookies
        victim.get("/login")  # the victim's own form cookie, but the attacker's token
        assert victim.post("/login", data={**creds, "csrf_token": their_token}).status_code == 403
    assert sessions_of(rt, "W2") == []


def test_logging_in_again_ends_the_session_the_browser_had(live_server: LiveServer) -> None:
    rt = live_server.runtime
    with live_server.client() as http:
        log_in(http, "W1")
        first = http.cookies[SESSION_COOKIE]
        assert log_in(http, "W2").status_code == 303
        assert signed_in_as(http) == "W2"
    with live_server.client(cookies={SESSION_COOKIE: first}) as old:
        assert signed_in_as(old) is None
    assert [s.ended_why for s in sessions_of(rt, "W1")] == ["replaced"]


def test_wrong_password_and_unknown_user_get_the_same_answer(live_server: LiveServer) -> None:
    with live_server.client() as http:
        wrong, unknown = log_in(http, "W1", "not the password"), log_in(http, "NOBODY", PASSWORD)
        no_login = log_in(http, "SM1", PASSWORD)  # in the staff list, but has no login
    assert {r.status_code for r in (wrong, unknown, no_login)} == {401}
    assert "The staff id or password is not right." in wrong.text

    def page(response: httpx.Response, typed: str) -> str:  # the form's fresh token aside
        return TOKEN.sub("", response.text).replace(f'value="{typed}"', 'value=""')

    assert page(wrong, "W1") == page(unknown, "NOBODY") == page(no_login, "SM1")
    assert SESSION_COOKIE not in http.cookies


def test_login_is_rate_limited_per_account_and_per_address(live_server: LiveServer) -> None:
    rt = live_server.runtime
    with live_server.client() as http:
        for _ in range(rt.settings.login_failures_per_account):
            assert log_in(http, "W1", "guess guess guess").status_code == 401
        limited = log_in(http, "W1")  # the right password no longer helps
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == str(rt.settings.login_window_minutes * 60)
        assert "too many failed logins: try again in 15 minutes" in limited.text
        assert SESSION_COOKIE not in http.cookies
        assert log_in(http, "W2").status_code == 303  # another account from here is not locked out
        # Per address: failures spread over many ids still stop this address.
        failures = rt.settings.login_failures_per_address - rt.settings.login_failures_per_account
        for n in range(failures):
            assert log_in(http, f"SPRAY{n}", "guess guess guess").status_code == 401
        assert log_in(http, "TM1").status_code == 429
        clock(rt).now += timedelta(minutes=rt.settings.login_window_minutes, seconds=1)
        assert log_in(http, "W1").status_code == 303
        assert signed_in_as(http) == "W1"


def test_disabling_a_login_ends_its_sessions_at_once(live_server: LiveServer) -> None:
    rt = live_server.runtime
    with live_server.client() as http, live_server.client() as elsewhere:
        log_in(http, "W1")
        log_in(elsewhere, "W1")
        assert access.disable_user(rt, SYSTEM, "W1") == 2
        assert signed_in_as(http) is None and signed_in_as(elsewhere) is None
        assert log_in(http, "W1").status_code == 401
    assert {s.ended_why for s in sessions_of(rt, "W1")} == {"disabled"}


def test_a_leavers_session_ends_on_their_leaving_day(live_server: LiveServer) -> None:
    rt = live_server.runtime
    with live_server.client() as http:
        log_in(http, "W2")
        leave(rt, SYSTEM, "W2", on=NOW.date() + timedelta(days=1), now=NOW)
        assert signed_in_as(http) == "W2"  # still here today
        clock(rt).now += timedelta(days=1)
        assert signed_in_as(http) is None
        assert log_in(http, "W2").status_code == 401
    assert [s.ended_why for s in sessions_of(rt, "W2")] == ["left"]


def test_sessions_time_out_when_idle_and_however_busy(live_server: LiveServer) -> None:
    rt = live_server.runtime
    idle = timedelta(minutes=rt.settings.session_idle_minutes)
    with live_server.client() as http:
        log_in(http, "W1")
        clock(rt).now += idle - timedelta(minutes=1)
        assert signed_in_as(http) == "W1"  # a request just in time keeps it alive
        clock(rt).now += idle - timedelta(minutes=1)
        assert signed_in_as(http) == "W1"
        clock(rt).now += idle
        assert signed_in_as(http) is None
        # Busy all day: a request every 20 minutes, and still out after the absolute limit.
        log_in(http, "W1")
        started = clock(rt).now
        absolute = timedelta(hours=rt.settings.session_absolute_hours)
        while clock(rt).now + timedelta(minutes=20) < started + absolute:
            clock(rt).now += timedelta(minutes=20)
            assert signed_in_as(http) == "W1"
        clock(rt).now = started + absolute
        assert signed_in_as(http) is None
    assert [s.ended_why for s in sessions_of(rt, "W1")] == ["idle time-out", "absolute time-out"]


def test_the_login_page_is_plain_accessible_html(live_server: LiveServer) -> None:
    with live_server.client() as http:
        page = http.get("/login")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<html lang="en" class="govuk-template">' in page.text
    for field in ("username", "password"):
        assert re.search(f'<label class="govuk-label" for="{field}">', page.text), page.text
        assert f'id="{field}" name="{field}"' in page.text
    assert 'autocomplete="current-password"' in page.text
    cookie = page.headers["set-cookie"].lower()
    assert cookie.startswith(f"{LOGIN_COOKIE}=") and "httponly" in cookie and "samesite=strict" in cookie
