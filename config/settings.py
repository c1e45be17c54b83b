"""Every setting caseloop reads, in one place.

Settings come from environment variables with the prefix ``CASELOOP_`` and are read when
:func:`get_settings` is called, never at import, so tests and processes can set their own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from workflow.errors import CaseloopError

DEFAULT_POLICY_FILE = Path(__file__).with_name("policy.yaml")


class Settings(BaseSettings):
    """The process-wide settings. Field names map to ``CASELOOP_<NAME>`` variables."""

    model_config = SettingsConfigDict(env_prefix="CASELOOP_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///./var/caseloop.db",
        description="SQLAlchemy URL. SQLite (the embedded default) or postgresql+psycopg://…",
    )
    timezone: str = Field(default="Europe/London", description="The council's local time zone.")
    policy_file: Path = Field(
        default=DEFAULT_POLICY_FILE,
        description="The clock, calendar and reminder policy (YAML) a council edits.",
    )
    environment: Literal["development", "test", "production"] = Field(
        default="development", description="production refuses to start on embedded defaults"
    )

    # Processes and the broker. Unset, the broker is embedded: files under ./var/broker, no server.
    broker_url: str | None = Field(default=None, description="redis://… in production.")
    broker_visibility_timeout: int = Field(default=3600, ge=5, description="Redis redelivery, seconds.")
    var_dir: Path = Field(default=Path("var"), description="Local state: SQLite, broker files, outbox.")
    worker_concurrency: int = Field(default=2, ge=1, le=32)
    sweep_interval_seconds: float = Field(default=60.0, gt=0, description="How often the beat sweeps.")
    prompt_dispatch: bool = Field(
        default=True, description="The web wakes the workers when a request makes letters due."
    )
    task_time_limit: int = Field(default=120, ge=2, description="Hard limit of one task, seconds.")
    # A message left `sending` longer than this is reconciled; it must outlast any live send.
    sending_timeout: int = Field(default=600, ge=3, description="Seconds before a send is stale.")
    redispatch_after: int = Field(
        default=300, ge=1, description="Re-dispatch a queued message whose broker message was lost, seconds."
    )
    claim_batch: int = Field(default=500, ge=1, description="Messages one sweep or tick hands out at most.")
    # Each chunk of clocks is one transaction: small enough to keep locks and memory short,
    # large enough that the round trips do not dominate.
    plan_chunk: int = Field(
        default=1000, ge=1, le=100_000, description="Clocks planned per transaction of the day's reminders."
    )
    # What the broker may hold for delivery: each worker slot has at most this many messages
    # waiting for it, so a backlog waits in the database (where it can be re-planned, held or
    # cancelled), not in the broker. Each finished delivery claims the next, so this bounds the
    # broker, not the pace.
    delivery_workers: int = Field(default=1, ge=1, le=64, description="Worker processes that deliver.")
    dispatch_per_slot: int = Field(default=4, ge=1, le=100, description="Messages waiting per worker slot.")
    max_attempts: int = Field(default=6, ge=1, le=50, description="Delivery tries before failing.")
    retry_base_seconds: float = Field(default=30.0, gt=0, description="First retry back-off.")

    # Email.
    smtp_url: str | None = Field(
        default=None, description="smtp://, smtp+starttls:// or smtps://user:pass@host:port; unset: file"
    )
    smtp_timeout: float = Field(default=20.0, gt=0, description="Seconds for any SMTP step.")
    smtp_verify_tls: bool = Field(default=True, description="Check the server's TLS certificate.")
    mail_from: str = Field(default="caseloop@localhost", description="The From address of emails.")
    base_url: str = Field(default="http://localhost:8000", description="Links in emails to staff.")

    # Letters.
    council_file: Path = Field(
        default=Path(__file__).with_name("council.yaml"), description="The council's details for letters."
    )
    notify_api_key: str | None = Field(default=None, description="GOV.UK Notify API key; unset: no Notify.")
    notify_base_url: str = Field(default="https://api.notifications.service.gov.uk")
    notify_email_template_id: str | None = Field(
        default=None, description="A Notify email template with ((subject)) and ((body))."
    )

    # The web (``caseloop web``).
    secret_key: SecretStr | None = Field(
        default=None, description="Signs the login form and session cookies; required in production."
    )
    cookie_secure: bool | None = Field(
        default=None, description="Send cookies over HTTPS only (default: yes in production, else no)."
    )
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60, description="Signed out after idling.")
    session_absolute_hours: int = Field(default=10, ge=1, le=72, description="Signed out however busy.")
    notify_callback_token: SecretStr | None = Field(
        default=None, description="The bearer token GOV.UK Notify sends with its delivery receipts."
    )
    forwarded_allow_ips: str = Field(
        default="127.0.0.1", description="Proxies whose X-Forwarded-* headers uvicorn trusts."
    )
    # "fast" exists so tests do not spend a second per login; production refuses it.
    password_hashing: Literal["standard", "fast"] = Field(
        default="standard", description="argon2 cost: standard (recommended parameters) or fast (tests)."
    )
    login_window_minutes: int = Field(default=15, ge=1, le=24 * 60, description="Login rate-limit window.")
    login_failures_per_account: int = Field(default=5, ge=1, description="Failed logins per staff id.")
    login_failures_per_address: int = Field(default=20, ge=1, description="Failed logins per address.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"CASELOOP_TIMEZONE: unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.environment == "production":
            # Production fails at startup rather than quietly running on the embedded defaults.
            missing = [
                name
                for name, ok in (
                    ("CASELOOP_DATABASE_URL (PostgreSQL)", self.database_url.startswith("postgresql")),
                    ("CASELOOP_BROKER_URL", bool(self.broker_url)),
                    ("CASELOOP_SMTP_URL", bool(self.smtp_url)),
                    ("CASELOOP_SECRET_KEY (32 characters or more)", self._strong_secret),
                    ("CASELOOP_COOKIE_SECURE not false", self.cookie_secure is not False),
                    ("CASELOOP_PASSWORD_HASHING standard", self.password_hashing == "standard"),
                )
                if not ok
            ]
            if missing:
                raise ValueError(f"production needs {', '.join(missing)}")
        self.notify_api_key = self.notify_api_key or None  # compose passes "" for "not set"
        self.notify_email_template_id = self.notify_email_template_id or None
        if self.notify_api_key and not self.notify_email_template_id:
            raise ValueError("CASELOOP_NOTIFY_API_KEY needs CASELOOP_NOTIFY_EMAIL_TEMPLATE_ID too")
        if self.sending_timeout <= self.task_time_limit:
            raise ValueError(
                "CASELOOP_SENDING_TIMEOUT must be longer than CASELOOP_TASK_TIME_LIMIT, or a live "
                "send could be reclaimed"
            )
        return self

    @property
    def _strong_secret(self) -> bool:
        return self.secret_key is not None and len(self.secret_key.get_secret_value()) >= 32

    @property
    def secure_cookies(self) -> bool:
        return self.cookie_secure if self.cookie_secure is not None else self.environment == "production"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def delivery_capacity(self) -> int:
        """How many delivery messages the broker may hold at once (waiting, not yet started)."""
        slots = self.delivery_workers * self.worker_concurrency
        return min(self.claim_batch, slots * self.dispatch_per_slot)

    @property
    def outbox_dir(self) -> Path:
        return self.var_dir / "outbox"

    @property
    def broker_dir(self) -> Path:
        return self.var_dir / "broker"

    @property
    def print_dir(self) -> Path:
        return self.var_dir / "print"

    @property
    def pdf_cache_dir(self) -> Path:
        return self.var_dir / "pdf-cache"


class SettingsError(CaseloopError):
    """The environment's CASELOOP_ settings are not usable; the message names each problem."""


def get_settings() -> Settings:
    """Read the settings from the environment now."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"CASELOOP_{'_'.join(str(p) for p in e['loc']).upper() or '(settings)'}: "
            f"{e['msg'].removeprefix('Value error, ')}"
            if e["loc"]
            else e["msg"].removeprefix("Value error, ")
            for e in exc.errors()
        )
        raise SettingsError(f"bad settings: {problems}") from exc
