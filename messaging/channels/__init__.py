"""Delivery channels for email: SMTP, and a folder of ``.eml`` files for the embedded default.

Every channel takes an ``on_handover`` callback and calls it at the last moment at which the
message has certainly not been delivered: for SMTP just before the final ``.`` of DATA, for files
just before the atomic rename. The caller records that moment, so after a crash it knows whether a
resend is safe (no handover) or whether a person must check (handover, no confirmation).
"""

from __future__ import annotations

import os
import re
import smtplib
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Protocol
from urllib.parse import unquote, urlsplit

from messaging.email import OUTBOX_ID_HEADER, OutgoingEmail
from messaging.letter import OutgoingLetter
from messaging.outbox import OutboxMessage
from workflow.errors import CaseloopError
from workflow.private_files import private_dir, write_private

Handover = Callable[[], None]
FINAL_REPLY_TIMEOUT = 600.0  # seconds: RFC 5321's "DATA termination" time-out


class DeliveryError(CaseloopError):
    """A channel could not deliver. ``code`` is the provider's status where there is one."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class RetryableDeliveryError(DeliveryError):
    """Worth trying again later: a timeout, a refused connection, a 4xx SMTP reply."""


class PermanentDeliveryError(DeliveryError):
    """Trying again will not help: a 5xx SMTP reply, a refused recipient."""


class OutcomeUnknown(DeliveryError):
    """The channel handed the message over and then lost the answer (a reply to the final dot
    that never came, a reset, a time-out): it may have been delivered. Never resent unchecked."""


class Channel(Protocol):
    name: str

    def send(self, item: OutgoingEmail | OutgoingLetter, on_handover: Handover) -> str:
        """Deliver, returning the provider's reference; raise a ``DeliveryError`` otherwise."""
        ...

    def confirm(self, message: OutboxMessage) -> bool | None:
        """After a crash past handover: True if delivered, False if not, None if it cannot tell."""
        ...


def _email_only(channel: str, item: OutgoingEmail | OutgoingLetter) -> OutgoingEmail:
    if not isinstance(item, OutgoingEmail):
        raise PermanentDeliveryError(f"the {channel} channel sends emails, not posted letters")
    return item


def _mime_bytes(email: OutgoingEmail, sender: str) -> bytes:
    """The message as bytes, or a permanent failure: building is deterministic, so a header the
    mail library refuses (a CR/LF in an address or a reference, an address it cannot parse) is
    refused the same way on every retry. The library's own words, cut short, say which."""
    try:
        return email.to_mime(sender).as_bytes()
    except Exception as exc:  # ValueError for CR/LF; other types from its header parser
        raise PermanentDeliveryError(
            f"the email could not be built: {type(exc).__name__}: {str(exc)[:200]}"
        ) from exc


class FileChannel:
    """Writes each email as ``<key>.eml`` in a folder a person can open (the embedded default)."""

    name = "file"

    def __init__(self, directory: Path, sender: str) -> None:
        self.directory, self.sender = directory, sender

    def _path(self, key: str) -> Path:
        return self.directory / f"{re.sub(r'[^A-Za-z0-9._-]', '_', key)}.eml"

    def send(self, item: OutgoingEmail | OutgoingLetter, on_handover: Handover) -> str:
        email = _email_only(self.name, item)
        key = email.headers.get(OUTBOX_ID_HEADER, email.message_id)
        target = self._path(f"outbox-{key}")
        data = _mime_bytes(email, self.sender)
        try:
            private_dir(self.directory)
            temporary = target.with_suffix(".tmp")
            write_private(temporary, data)  # an email holds a name and an address: owner only
            on_handover()
            os.replace(temporary, target)
        except OSError as exc:
            raise RetryableDeliveryError(f"cannot write to the outbox folder: {exc.strerror}") from exc
        return target.name

    def confirm(self, message: OutboxMessage) -> bool | None:
        return self._path(f"outbox-{message.id}").exists()


class SmtpChannel:
    """Email over SMTP. URL schemes: ``smtp://`` (plain), ``smtp+starttls://``, ``smtps://``."""

    name = "smtp"
    _DEFAULT_PORTS: ClassVar[dict[str, int]] = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}

    def __init__(self, url: str, *, sender: str, timeout: float, verify_tls: bool = True) -> None:
        parts = urlsplit(url)
        if parts.scheme not in self._DEFAULT_PORTS or not parts.hostname:
            raise CaseloopError(
                "CASELOOP_SMTP_URL must look like smtp://host:port, smtp+starttls://… or smtps://…"
            )
        self.scheme, self.host = parts.scheme, parts.hostname
        self.port = parts.port or self._DEFAULT_PORTS[parts.scheme]
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.sender, self.timeout = sender, timeout
        self.tls = ssl.create_default_context()
        if not verify_tls:
            self.tls.check_hostname = False
            self.tls.verify_mode = ssl.CERT_NONE

    def _connect(self) -> smtplib.SMTP:
        # smtplib waits forever by default; every step here is bounded by the timeout.
        if self.scheme == "smtps":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=self.tls)
        client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        if self.scheme == "smtp+starttls":
            client.starttls(context=self.tls)
        return client

    def send(self, item: OutgoingEmail | OutgoingLetter, on_handover: Handover) -> str:
        email = _email_only(self.name, item)
        data = _mime_bytes(email, self.sender)
        client: smtplib.SMTP | None = None
        # Whether the last thing on the wire was a reply read: only then may QUIT be sent (in the
        # middle of DATA it would be taken as the message's text; after a lost reply, wait again).
        replied = False
        try:
            client = self._connect()
            client.ehlo_or_helo_if_needed()
            if self.username:
                client.login(self.username, self.password or "")
            _transaction(client, self.sender, email.to, data, on_handover)
            replied = True
        except OutcomeUnknown:
            raise
        except smtplib.SMTPResponseException as exc:
            replied = True  # a reply was read, so the outcome is known (a refusal of the dot too)
            kind = PermanentDeliveryError if 500 <= exc.smtp_code < 600 else RetryableDeliveryError
            raise kind(f"SMTP server replied {exc.smtp_code}", exc.smtp_code) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            replied = True
            kind = PermanentDeliveryError if all(c >= 500 for c in codes) else RetryableDeliveryError
            raise kind(f"SMTP server refused the recipient ({', '.join(map(str, codes))})") from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise RetryableDeliveryError(f"SMTP connection failed: {type(exc).__name__}") from exc
        except UnicodeError as exc:
            # smtplib writes commands in ASCII: an internationalised address cannot be given in
            # MAIL or RCPT without SMTPUTF8, which caseloop does not use. Always before the dot.
            raise PermanentDeliveryError("SMTP: an address is not ASCII; it cannot be sent by SMTP") from exc
        finally:
            if client is not None:
                self._close(client, polite=replied)
        return email.message_id

    def _close(self, client: smtplib.SMTP, *, polite: bool) -> None:
        """End the connection without letting the ending change the outcome.

        Not ``with smtplib.SMTP(...)``: its QUIT raises on a reply other than 221, which would turn
        a message the server accepted into a failed attempt (and a resend), and it waits with
        whatever time-out the socket has, ten minutes after the final dot. QUIT here is bounded
        by the short time-out and its failure ignored; otherwise the socket is just closed.
        """
        try:
            if polite and client.sock is not None:
                client.sock.settimeout(self.timeout)
                client.quit()
        except (smtplib.SMTPException, OSError):
            pass
        finally:
            client.close()

    def confirm(self, message: OutboxMessage) -> bool | None:
        return None  # SMTP cannot be asked whether a message arrived


def _transaction(
    client: smtplib.SMTP, sender: str, recipient: str, data: bytes, on_handover: Handover
) -> None:
    """MAIL, RCPT and DATA, with ``on_handover`` called before the final dot is sent.

    This is smtplib's ``sendmail`` split at the one point that matters: until the server reads
    the terminating ``.``, it has accepted nothing.
    """
    code, reply = client.mail(sender)
    if code != 250:
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    code, reply = client.rcpt(recipient)
    if code not in (250, 251):
        raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
    code, reply = client.docmd("data")
    if code != 354:
        raise smtplib.SMTPDataError(code, reply)
    body = re.sub(rb"(?m)^\.", b"..", re.sub(rb"\r\n|\r|\n", b"\r\n", data))
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    client.send(body)
    on_handover()
    try:
        # RFC 5321 4.5.3.2.6: wait 10 minutes for the reply to the final dot (the server may be
        # scanning the message); the connect time-out stays short.
        if client.sock is not None:
            client.sock.settimeout(FINAL_REPLY_TIMEOUT)
        client.send(b".\r\n")
        code, reply = client.getreply()
    except (smtplib.SMTPException, OSError) as exc:
        raise OutcomeUnknown(f"SMTP: no reply to the end of the message ({type(exc).__name__})") from exc
    if code != 250:
        raise smtplib.SMTPDataError(code, reply)
