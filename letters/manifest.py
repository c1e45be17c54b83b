"""The letter template manifest: one entry per template key, saying what the template may use.

The manifest is the record of what each letter discloses. ``fields`` lists the dotted paths into
the audience's view-model (``letters/views.py``) that the template, its layouts and its subject
may use; a trailing ``?`` marks a field that may be empty. ``choices`` pins a field to a set of
values (a closing letter's variant, a decision), so an unexpected value holds the letter rather
than printing the wrong paragraph.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Any, Literal, NamedTuple

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from letters.rendering import RenderError

KEY = re.compile(r"^[a-z][a-z0-9_]*$")
FIELD = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*\??$")

Audience = Literal["family", "referrer", "school"]
Channel = Literal["email", "post"]


class ManifestError(RenderError):
    """The manifest cannot be used; the message names the template key and the setting."""


class Entry(BaseModel):
    """One letter template: its version, audience, channels, subject and the fields it uses."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    version: int = Field(ge=1)
    audience: Audience
    channels: tuple[Channel, ...] = Field(min_length=1)
    subject: str = Field(min_length=1, max_length=150)
    description: str = Field(min_length=1)
    fields: tuple[str, ...] = Field(min_length=1)
    choices: dict[str, tuple[str | bool, ...]] = Field(default_factory=dict)

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not KEY.match(value):
            raise ValueError("a key is lower case letters, digits and underscores")
        return value

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("a channel is listed twice")
        return value

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str) -> str:
        if "\n" in value.strip():
            raise ValueError("a subject is one line")
        return value.strip()

    @field_validator("fields")
    @classmethod
    def _fields(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for field in value:
            if not FIELD.match(field):
                raise ValueError(f"{field!r} is not a dotted field path such as recipient.name")
        paths = [field.rstrip("?") for field in value]
        repeated = sorted({path for path in paths if paths.count(path) > 1})
        if repeated:
            raise ValueError(f"{', '.join(repeated)} declared more than once")
        for path in paths:
            inside = [other for other in paths if other.startswith(path + ".")]
            if inside:
                # Declaring a whole object would let the template print all of it.
                raise ValueError(f"{path} is declared alongside {inside[0]}: declare only the leaves")
        return value

    @model_validator(mode="after")
    def _choices(self) -> Entry:
        for path, allowed in self.choices.items():
            if path not in self.paths:
                raise ValueError(f"choices: {path} is not one of the declared fields")
            if not allowed:
                raise ValueError(f"choices: {path} allows no value")
        return self

    @cached_property  # read for every field of every letter rendered
    def paths(self) -> tuple[str, ...]:
        """Every declared field path, without the optional marker."""
        return tuple(field.rstrip("?") for field in self.fields)

    @cached_property  # read for every field of every letter rendered
    def required(self) -> frozenset[str]:
        """The fields that must hold a non-empty value for the letter to be rendered."""
        return frozenset(field for field in self.fields if not field.endswith("?"))

    @cached_property  # read for every field of every letter rendered
    def optional(self) -> frozenset[str]:
        return frozenset(field[:-1] for field in self.fields if field.endswith("?"))

    @cached_property  # worked out once, so rendering a letter splits and looks up nothing twice
    def plan(self) -> tuple[FieldPlan, ...]:
        """Each declared field as rendering reads it: its path's parts, required or not, and
        the values it may take (None: any)."""
        required = self.required
        return tuple(
            FieldPlan(
                path,
                tuple(path.split(".")),
                path in required,
                tuple(self.choices[path]) if path in self.choices else None,
            )
            for path in self.paths
        )


class FieldPlan(NamedTuple):
    path: str
    parts: tuple[str, ...]
    required: bool
    choices: tuple[Any, ...] | None


def parse_manifest(source: str, name: str = "manifest.yaml") -> dict[str, Entry]:
    """The entries of a manifest file, keyed by template key; any error names the key."""
    try:
        data = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        raise ManifestError(f"{name}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not data:
        raise ManifestError(f"{name}: expected a mapping of template keys to entries")
    entries: dict[str, Entry] = {}
    for key, body in data.items():
        if not isinstance(body, dict):
            raise ManifestError(f"{name}: {key}: expected a mapping of settings")
        entries[str(key)] = _entry(name, str(key), body)
    return entries


def _entry(name: str, key: str, body: dict[str, Any]) -> Entry:
    if "key" in body:
        raise ManifestError(f"{name}: {key}: the key is the entry's name, not a setting")
    try:
        return Entry.model_validate({"key": key, **body})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(part) for part in first["loc"])
        where = f"{loc}: " if loc else ""
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ManifestError(f"{name}: {key}: {where}{message}") from exc
