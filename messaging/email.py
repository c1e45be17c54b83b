"""An email ready to go: built from rendered content, turned into MIME by a channel."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formatdate

# Every email carries its outbox row's id and idempotency key (providers take the key as their
# reference; the file channel names files by the id).
OUTBOX_ID_HEADER = "X-Caseloop-Outbox-Id"
REFERENCE_HEADER = "X-Caseloop-Reference"


@dataclass(frozen=True)
class OutgoingEmail:
    to: str
    subject: str
    text: str
    html: str
    # Stable per outbox row, so a resend (after a crash that proved nothing went) is the same mail.
    message_id: str
    headers: dict[str, str] = field(default_factory=dict)
    template_version: int | None = None  # for letters: the manifest version rendered
    # When it was made, from the runtime's clock (the instant the letter inside is dated by).
    date: datetime | None = None

    @property
    def content_hash(self) -> str:
        return hashlib.sha256("\x00".join((self.to, self.subject, self.text, self.html)).encode()).hexdigest()

    def to_mime(self, sender: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = sender
        message["To"] = self.to
        message["Subject"] = self.subject
        message["Message-ID"] = self.message_id
        if self.date is not None:
            message["Date"] = format_datetime(self.date)
        else:
            message["Date"] = formatdate(localtime=False, usegmt=True)
        for name, value in self.headers.items():
            message[name] = value
        message.set_content(self.text)
        message.add_alternative(self.html, subtype="html")
        return message
