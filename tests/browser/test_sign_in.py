"""Signing in through the real page, with JavaScript on and off; the page passes WCAG 2.2 AA."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Visitor
from tests.web.conftest import LiveServer
from tests.web.test_login import PASSWORD, runtime  # noqa: F401  (the fixture: staff and logins)

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_a_worker_signs_in_and_out(
    live_server: LiveServer, visit: Callable[..., Visitor], javascript: bool
) -> None:
    me = visit(live_server.url, javascript=javascript)
    page = me.open("/")
    assert "/login" in page.url  # not signed in: sent to sign in, and brought back afterwards
    me.check()
    page.get_by_label("Staff id").fill("W1")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="There is a problem")).to_be_visible()
    me.check()  # the error summary and the form with the error
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/login" not in url)
    assert page.url.endswith("/")
    page.get_by_role("button", name="Sign out W1").click()
    page.wait_for_url(lambda url: "/login" in url)
    assert me.open("/").url.endswith("/login")
