"""A letter ready to go: rendered text and HTML, its PDF, and where it is posted."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class OutgoingLetter:
    key: str  # the outbox row's id: names files and finds the letter again after a crash
    reference: str  # the outbox idempotency key, given to providers as their reference
    recipient_name: str
    address_lines: tuple[str, ...]
    subject: str
    text: str
    html: str
    pdf: bytes
    postage: str = "second"
    template_version: int | None = None

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.pdf).hexdigest()
