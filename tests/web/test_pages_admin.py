"""Admin through a real uvicorn: only an admin login gets in; it makes a login that can then sign
in and disables it so it cannot, makes an API token that then works on the API and revokes it so
it is refused, and records a leaver and brings them back. Bad input is answered with the form
again (422), naming what is wrong and keeping what was typed, never a password."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from config.settings import Settings
from config.wiring import Runtime, build_runtime
from migrations import upgrade
from services import access
from services.actors import SYSTEM
from tests.factories import MovableClock, import_events, import_staff, referral
from tests.web.conftest import LiveServer
from tests.web.test_login import NOW, PASSWORD, log_in, signed_in_as, token_in
from workflow.access import ApiToken, User
from workflow.staff import Staff

NEW_PASSWORD = "a different long password"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, var_dir=tmp_path / "var", password_hashing="fast")


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    """Staff SM1 over TM1 over W1 and W2; W1 and TM1 have logins, and ADMIN is an admin-only one
    (SM1 in the directory, reading no case). One case, C1."""
    upgrade(settings.database_url)
    rt = build_runtime(settings, MovableClock(NOW))
    import_staff(rt)
    access.add_user(rt, SYSTEM, "W1", PASSWORD)
    access.add_user(rt, SYSTEM, "TM1", PASSWORD)
    access.add_user(rt, SYSTEM, "SM1", PASSWORD, admin=True, reads_cases=False)
    assert import_events(rt, referral("C1", "2026-11-02"), now=NOW.isoformat()).ok
    yield rt
    rt.close()


@contextmanager
def signed_in(live_server: LiveServer, staff_id: str, password: str = PASSWORD) -> Iterator[httpx.Client]:
    with live_server.client() as http:
        assert log_in(http, staff_id, password).status_code == 303
        yield http


def submit(http: httpx.Client, path: str, page: httpx.Response, **fields: object) -> httpx.Response:
    """POST a form from ``page`` (with its token) to ``path``; hyphens in names are written as ``__``."""
    data = {name.replace("__", "-"): value for name, value in fields.items()}
    return http.post(path, data={"csrf_token": token_in(page), **data})


def moved(answer: httpx.Response) -> tuple[int, str]:
    return answer.status_code, answer.headers.get("location", "")


def text_of(page: httpx.Response) -> str:
    return html.unescape(" ".join(re.sub(r"<[^>]+>", " ", page.text).split()))


def error_summary(page: httpx.Response) -> list[str]:
    found = re.search(r'<ul class="govuk-list govuk-error-summary__list">(.*?)</ul>', page.text, re.S)
    assert found, page.text
    return [
        html.unescape(" ".join(re.sub(r"<[^>]+>", " ", item).split()))
        for item in re.findall(r"<li>(.*?)</li>", found.group(1), re.S)
    ]


def test_only_an_admin_gets_in(live_server: LiveServer) -> None:
    for staff_id in ("W1", "TM1"):
        with signed_in(live_server, staff_id) as http:
            token = token_in(http.get("/"))
            for path in ("/admin", "/admin/users", "/admin/tokens", "/admin/staff"):
                refused = http.get(path)
                assert refused.status_code == 403, path
                assert "You cannot do that" in refused.text
            posts = [
                ("/admin/users", {"staff_id": "W2", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}),
                ("/admin/users", {"staff_id": "", "password": "short", "confirm": "other"}),  # bad: 403 too
                ("/admin/users/W1/disable", {}),
                ("/admin/tokens", {"name": "dash", "scopes": "cases:read"}),
                ("/admin/tokens", {"name": ""}),
                ("/admin/tokens/dash/revoke", {}),
                ("/admin/staff/leavers", {"staff_id": "W2"}),
                ("/admin/staff/leavers", {"staff_id": ""}),
                ("/admin/staff/W2/rejoin", {}),
            ]
            for path, fields in posts:
                assert http.post(path, data={**fields, "csrf_token": token}).status_code == 403, path
            assert 'href="/admin"' not in http.get("/").text  # nor is it offered
    with live_server.runtime.reading() as uow:
        assert uow.session.get(User, "W2") is None
        assert uow.session.scalars(select(ApiToken)).all() == []
    with signed_in(live_server, "SM1") as http:
        assert http.get("/admin").status_code == 200
        assert http.get("/my-work").status_code == 403  # an admin-only login reads no case


def test_an_admin_makes_a_login_that_signs_in_and_disables_it_so_it_cannot(live_server: LiveServer) -> None:
    with signed_in(live_server, "SM1") as admin:
        form = admin.get("/admin/users")
        assert form.status_code == 200
        listing = text_of(form)
        assert "SM1 Staff SM1 Admin only (reads no case) Enabled 3 November 2026, 10:00" in listing
        assert "W1 Staff W1 No Enabled Never Disable the login of W1" in listing
        made = submit(admin, "/admin/users", form, staff_id="W2", password=NEW_PASSWORD, confirm=NEW_PASSWORD)
        assert moved(made) == (303, "/admin/users?done=user-added")
        listed = admin.get(made.headers["location"])
        assert "Login made" in listed.text and "Staff W2" in listed.text

        with signed_in(live_server, "W2", NEW_PASSWORD) as w2:
            assert signed_in_as(w2) == "W2"
            disabled = submit(admin, "/admin/users/W2/disable", listed)
            assert moved(disabled) == (303, "/admin/users?done=user-disabled")
            assert signed_in_as(w2) is None  # the session ended at once
        assert "Disabled" in text_of(admin.get("/admin/users"))
    with live_server.client() as http:
        assert log_in(http, "W2", NEW_PASSWORD).status_code == 401
    with live_server.runtime.reading() as uow:
        user = uow.session.get(User, "W2")
        assert user is not None and user.disabled_at is not None and not user.is_admin


@pytest.mark.parametrize(
    ("fields", "wrong"),
    [
        (
            {"staff_id": "W2", "password": "too short", "confirm": "too short"},
            "Enter a password of at least 12 characters",
        ),
        (
            {"staff_id": "W2", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD + "!"},
            "The two passwords differ: type the same password twice",
        ),
        (
            {"staff_id": "NOBODY", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
            "No member of staff 'NOBODY': import the staff list first",
        ),
        (
            {"staff_id": "W1", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
            "W1 has a login already (`caseloop users disable W1` first)",
        ),
        (
            {"staff_id": "W2", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD, "no_cases": "yes"},
            "A login that reads no case must be an admin login, or it can do nothing",
        ),
    ],
)
def test_a_login_that_cannot_be_made_is_the_form_again_with_what_is_wrong(
    live_server: LiveServer, fields: dict[str, str], wrong: str
) -> None:
    with signed_in(live_server, "SM1") as admin:
        form = admin.get("/admin/users")
        # Admin ticked, except where the case is a login that reads no case without it.
        ticked = {} if "no_cases" in fields else {"admin": "yes"}
        again = submit(admin, "/admin/users", form, **ticked, **fields)
    assert again.status_code == 422
    assert again.text.count("<title>Error: Logins") == 1
    assert error_summary(again) == [wrong]
    assert f'value="{fields["staff_id"]}"' in again.text  # what was typed is kept …
    assert NEW_PASSWORD not in again.text and "too short" not in again.text  # … but never a password
    with live_server.runtime.reading() as uow:
        assert uow.session.get(User, "W2") is None


def test_an_admin_makes_a_token_that_works_and_revokes_it_so_it_is_refused(live_server: LiveServer) -> None:
    with signed_in(live_server, "SM1") as admin:
        form = admin.get("/admin/tokens")
        assert 'value="cases:read"' in form.text and 'value="events:write"' in form.text
        made = submit(
            admin,
            "/admin/tokens",
            form,
            name="dashboard",
            scopes=["cases:read", "outbox:read"],
            teams="front-door",
        )
        assert made.status_code == 200
        assert made.headers["cache-control"] == "no-store"
        [token] = re.findall(r'<code class="app-break" id="new-token">(cl_[^<]+)</code>', made.text)
        listed = admin.get("/admin/tokens")
        assert "dashboard" in listed.text and token not in listed.text  # shown once, never again
        assert token[:9] in listed.text  # its prefix, to recognise it

        bearer = {"authorization": f"Bearer {token}"}
        with live_server.client() as system:
            case = system.get("/api/cases/C1", headers=bearer)
            assert case.status_code == 200 and case.json()["case"] == "C1"
            revoked = submit(admin, "/admin/tokens/dashboard/revoke", listed)
            assert moved(revoked) == (303, "/admin/tokens?done=token-revoked")
            assert system.get("/api/cases/C1", headers=bearer).status_code == 401
        assert "Revoked" in text_of(admin.get("/admin/tokens"))

        twice = submit(
            admin, "/admin/tokens", listed, name="dashboard", scopes="cases:read", teams="front-door"
        )
        assert twice.status_code == 422
        taken = "A token named 'dashboard' exists already: revoke it, or choose another name"
        assert error_summary(twice) == [taken]
        assert 'value="dashboard"' in twice.text and 'value="front-door"' in twice.text
        assert re.search(r'value="cases:read" checked', twice.text)
        none_chosen = submit(admin, "/admin/tokens", listed, name="other")
        assert none_chosen.status_code == 422
        assert error_summary(none_chosen) == ["Select what the token may do"]
    with live_server.runtime.reading() as uow:
        [row] = uow.session.scalars(select(ApiToken)).all()
    assert (row.name, row.scopes, row.teams) == ("dashboard", ["cases:read", "outbox:read"], ["front-door"])
    assert row.revoked_at is not None and token not in (row.token_hash, row.prefix)


def test_an_admin_records_a_leaver_and_brings_them_back(live_server: LiveServer) -> None:
    rt = live_server.runtime
    with signed_in(live_server, "SM1") as admin:
        form = admin.get("/admin/staff")
        unknown = submit(admin, "/admin/staff/leavers", form, staff_id="NOBODY")
        assert unknown.status_code == 422 and error_summary(unknown) == ["No member of staff 'NOBODY'"]
        assert 'value="NOBODY"' in unknown.text
        bad_day = submit(
            admin, "/admin/staff/leavers", form, staff_id="W1", on__day="31", on__month="2", on__year="2026"
        )
        assert bad_day.status_code == 422 and 'value="31"' in bad_day.text
        assert error_summary(bad_day)[0].startswith("Enter their first day gone as a real date")

        with signed_in(live_server, "W1") as w1:
            left = submit(admin, "/admin/staff/leavers", form, staff_id="W1")
            assert moved(left) == (303, "/admin/staff?done=leaver-recorded")
            assert signed_in_as(w1) is None  # a leaver's session ends
        page = text_of(admin.get("/admin/staff"))
        assert "W1 Staff W1 Social worker front-door Left on 3 November 2026" in page
        with live_server.client() as http:
            assert log_in(http, "W1").status_code == 401

        later = submit(
            admin, "/admin/staff/leavers", form, staff_id="W2", on__day="30", on__month="11", on__year="2026"
        )
        assert later.status_code == 303
        leaving = "W2 Staff W2 Social worker front-door Leaving on 30 November 2026"
        assert leaving in text_of(admin.get("/admin/staff"))

        back = submit(admin, "/admin/staff/W1/rejoin", form)
        assert moved(back) == (303, "/admin/staff?done=staff-rejoined")
    with rt.reading() as uow:
        w1, w2 = uow.session.get(Staff, "W1"), uow.session.get(Staff, "W2")
        assert w1 is not None and w2 is not None
        assert (w1.active, w1.left_on) == (True, None)
        assert w2.left_on is not None and w2.left_on.isoformat() == "2026-11-30"
    with live_server.client() as http:
        assert log_in(http, "W1").status_code == 303
