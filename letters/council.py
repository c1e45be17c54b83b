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
    # How a family asks for a decision to be looked at again, and how they tell us what they think:
    # every family letter says both.
    challenge: str = Field(min_length=1)
    feedback: str = Field(min_length=1)
    records: str = Field(min_length=1)
    early_help: str = Field(min_length=1)
    logo: str = ""
    # Each team's name as a letter prints it ("in our {name} team"), by the slug cases carry.
    teams: dict[str, str] = Field(default_factory=dict)

    def team_name(self, slug: str) -> str:
        """The team's display name; a team the council has not named reads as its slug in words."""
        named = self.teams.get(slug)
        if named:
            return named
        return " ".join(word.capitalize() for word in slug.replace("_", "-").split("-") if word)
