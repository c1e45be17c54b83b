"""Settings come from CASELOOP_ variables, when asked, and refuse unsafe combinations."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from config.settings import Settings, get_settings


def test_defaults_are_the_embedded_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CASELOOP_DATABASE_URL", "CASELOOP_BROKER_URL", "CASELOOP_TIMEZONE"):
        monkeypatch.delenv(name, raising=False)
    settings = get_settings()
    assert settings.database_url == "sqlite:///./var/caseloop.db"
    assert settings.broker_url is None
    assert settings.timezone == "Europe/London"


def test_read_from_the_environment_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASELOOP_TIMEZONE", "Europe/Belfast")
    monkeypatch.setenv("CASELOOP_SWEEP_INTERVAL_SECONDS", "5")
    settings = get_settings()
    assert settings.timezone == "Europe/Belfast"
    assert settings.sweep_interval_seconds == 5


def test_an_unknown_time_zone_is_named() -> None:
    with pytest.raises(ValidationError, match="CASELOOP_TIMEZONE: unknown time zone 'Europe/Atlantis'"):
        Settings(timezone="Europe/Atlantis")


def test_a_send_must_not_be_reclaimed_while_it_may_still_run() -> None:
    with pytest.raises(ValidationError, match="CASELOOP_SENDING_TIMEOUT must be longer"):
        Settings(task_time_limit=120, sending_timeout=60)


def test_production_refuses_embedded_defaults() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(environment="production")
    message = str(caught.value)
    for name in ("CASELOOP_DATABASE_URL", "CASELOOP_BROKER_URL", "CASELOOP_SMTP_URL", "CASELOOP_SECRET_KEY"):
        assert name in message


PRODUCTION = {
    "environment": "production",
    "database_url": "postgresql+psycopg://caseloop@db/caseloop",
    "broker_url": "redis://redis:6379/0",
    "smtp_url": "smtp+starttls://mail.example:587",
    "secret_key": "k" * 32,
}


def test_production_starts_with_its_services() -> None:
    settings = Settings(**PRODUCTION)  # type: ignore[arg-type]
    assert settings.environment == "production" and settings.secure_cookies


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"secret_key": None}, "CASELOOP_SECRET_KEY (32 characters or more)"),
        ({"secret_key": "short"}, "CASELOOP_SECRET_KEY (32 characters or more)"),
        ({"cookie_secure": False}, "CASELOOP_COOKIE_SECURE not false"),
        ({"password_hashing": "fast"}, "CASELOOP_PASSWORD_HASHING standard"),
    ],
)
def test_production_refuses_a_weak_secret_or_insecure_cookies(change: dict[str, object], named: str) -> None:
    with pytest.raises(ValidationError, match=named.replace("(", r"\(").replace(")", r"\)")):
        Settings(**{**PRODUCTION, **change})  # type: ignore[arg-type]


def test_cookies_are_secure_by_default_only_in_production() -> None:
    assert not Settings().secure_cookies
    assert Settings(cookie_secure=True).secure_cookies


def test_bad_environment_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from config.settings import SettingsError

    monkeypatch.setenv("CASELOOP_MAX_ATTEMPTS", "lots")
    with pytest.raises(SettingsError, match="CASELOOP_MAX_ATTEMPTS: Input should be a valid integer"):
        get_settings()
