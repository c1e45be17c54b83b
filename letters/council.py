"""The council's details printed on every letter (name, address, numbers, complaints, records)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Council(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    service: str = Field(min_length=1)
    address: tuple[str, ...] = Field(min_length=1)
    front_door_phone: str = Field(min_length=1)
    out_of_hours_phone: str = Field(min_length=1)
    email: str = Field(min_length=1)
    website: str = Field(min_length=1)
    complaints: str = Field(min_length=1)
    records: str = Field(min_length=1)
    early_help: str = Field(min_length=1)
    logo: str = ""
