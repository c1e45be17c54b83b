"""Every setting caseloop reads, in one place.

Settings come from environment variables with the prefix ``CASELOOP_`` and are read when
:func:`get_settings` is called, never at import, so tests and processes can set their own.
"""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    environment: str = Field(default="development", description="development, test or production.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"CASELOOP_TIMEZONE: unknown time zone {value!r}") from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def get_settings() -> Settings:
    """Read the settings from the environment now."""
    return Settings()
