"""The print channel: letters for the council's own post room, gathered into one PDF a day.

``PrintChannel.send`` puts each letter's PDF in ``<dir>/pending/outbox-<key>.pdf`` (written to a
temporary file, handed over, then renamed, so a half-written letter is never seen). The post room's
job runs :func:`make_batch`, which joins every pending letter behind a cover page into
``<dir>/batches/<day>.pdf`` (``<day>-2.pdf`` and so on for later runs the same day), records the
batch in ``<dir>/batches/<day>.json`` and moves the letters to ``<dir>/batched/<day>/``.

The manifest is the commit point. It is written (as a temporary file) before the batch PDF is
renamed into place and renamed itself right after; a run interrupted anywhere is finished by the
next one, so a letter is never lost between folders nor printed in two batches. The cover lists
outbox keys and page counts only: no names, no addresses. The batch is for duplex printing: the
cover and each letter take an even number of pages (a blank page added where needed), so every
letter starts on a sheet of its own.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

# pypdf is imported by the batch alone: every process builds this channel, few make a batch.
if TYPE_CHECKING:
    from pypdf import PdfReader, PdfWriter

from messaging.channels import Handover, PermanentDeliveryError, RetryableDeliveryError
from messaging.email import OutgoingEmail
from messaging.letter import OutgoingLetter
from messaging.outbox import OutboxMessage
from workflow.private_files import open_private, private_dir

log = logging.getLogger(__name__)

PREFIX, SUFFIX = "outbox-", ".pdf"
A4 = (595.28, 841.89)  # points
_ROWS, _COLUMNS = 60, 4  # keys per cover page: 60 lines in 4 columns


def _safe(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", key)


def _key(path: Path) -> str:
    """The outbox key a pending file is named after."""
    return path.name.removeprefix(PREFIX).removesuffix(SUFFIX)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_synced(path: Path, data: bytes) -> None:
    # Letters and batches carry names and addresses: readable by their owner only.
    with os.fdopen(open_private(path), "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def _write_atomically(target: Path, data: bytes, before_rename: Handover | None = None) -> None:
    temporary = target.with_name(f".{target.name}.tmp")
    _write_synced(temporary, data)
    if before_rename is not None:
        before_rename()
    os.replace(temporary, target)
    _fsync_dir(target.parent)


class PrintChannel:
    """Letters left for the post room's daily batch. ``send`` returns the pending file's name."""

    name = "print"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, item: OutgoingEmail | OutgoingLetter, on_handover: Handover) -> str:
        if not isinstance(item, OutgoingLetter):
            raise PermanentDeliveryError("the print channel posts letters, not emails")
        target = self.directory / "pending" / f"{PREFIX}{_safe(item.key)}{SUFFIX}"
        try:
            private_dir(target.parent)
            _write_atomically(target, item.pdf, on_handover)
        except OSError as exc:
            raise RetryableDeliveryError(f"cannot write to the print folder: {exc.strerror}") from exc
        return target.name

    def confirm(self, message: OutboxMessage) -> bool | None:
        """True if the letter waits in ``pending/`` or is recorded in a batch (by the row's id)."""
        return self.confirm_key(str(message.id))

    def confirm_key(self, key: str) -> bool | None:
        """True if letter ``key`` (an ``OutgoingLetter.key``) is pending or batched; None if unreadable."""
        pending = self.directory / "pending" / f"{PREFIX}{_safe(key)}{SUFFIX}"
        try:
            return pending.exists() or _safe(key) in _batched_keys(self.directory / "batches")
        except (OSError, ValueError):
            return None


def _manifests(batches: Path) -> Iterator[dict[str, Any]]:
    for path in sorted(batches.glob("*.json")):
        yield json.loads(path.read_text())


def _batched_keys(batches: Path) -> dict[str, str]:
    """Every batched key, with the day folder its file was moved to."""
    return {letter["key"]: m["day"] for m in _manifests(batches) for letter in m["letters"]}


@contextmanager
def _locked(batches: Path) -> Iterator[None]:
    """One batch run at a time (two post-room jobs must not share letters)."""
    with open(batches / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _recover(directory: Path) -> None:
    """Finish what an interrupted run committed; forget what it did not."""
    batches = directory / "batches"
    for pdf in batches.glob("*.pdf"):
        manifest, half = pdf.with_suffix(".json"), batches / f".{pdf.stem}.json.tmp"
        if not manifest.exists() and half.exists():
            os.replace(half, manifest)
    for stale in batches.glob(".*.tmp"):  # a batch that was never renamed into place
        stale.unlink()
    batched = _batched_keys(batches)
    for path in (directory / "pending").glob(f"{PREFIX}*{SUFFIX}"):
        key = _key(path)
        if key in batched:  # in a committed batch already: only the move was missing (or a resend)
            log.warning("print: outbox %s is already in a batch of %s; not printed again", key, batched[key])
            _move(path, directory / "batched" / batched[key])


def _move(path: Path, folder: Path) -> None:
    private_dir(folder)
    os.replace(path, folder / path.name)


def _batch_name(batches: Path, day: date) -> str:
    stem, n = day.isoformat(), 1
    while (batches / f"{stem}.pdf").exists() or (batches / f"{stem}.json").exists():
        n += 1
        stem = f"{day.isoformat()}-{n}"
    return stem


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _cover_pages(writer: PdfWriter, title: str, letters: list[dict[str, Any]]) -> int:
    """Cover pages drawn with pypdf alone: the batch, the count and the keys, nothing personal."""
    from pypdf.generic import ContentStream, DictionaryObject, NameObject

    lines = [f"Caseloop print batch {title}", f"{len(letters)} letters, in this order (outbox key: pages)"]
    entries = [f"{e['key']}: {e['pages']}" for e in letters]
    per_page = _ROWS * _COLUMNS
    chunks = [entries[i : i + per_page] for i in range(0, len(entries), per_page)] or [[]]
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
            NameObject("/Encoding"): NameObject("/WinAnsiEncoding"),
        }
    )
    for number, chunk in enumerate(chunks, start=1):
        page = writer.add_blank_page(*A4)
        ops = [
            "BT",
            "/F1 16 Tf",
            "56 780 Td",
            f"({_escape(lines[0])}) Tj",
            "/F1 11 Tf",
            "0 -22 Td",
            f"({_escape(lines[1])}) Tj",
            f"0 -16 Td (Cover page {number} of {len(chunks)}) Tj",
            "ET",
        ]
        for i, entry in enumerate(chunk):
            x, y = 56 + (i // _ROWS) * 125, 720 - (i % _ROWS) * 11
            ops.append(f"BT /F1 9 Tf {x} {y} Td ({_escape(entry)}) Tj ET")
        stream = ContentStream(None, writer)
        stream.set_data("\n".join(ops).encode("latin-1"))
        page.replace_contents(stream)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
    return len(chunks)


def _to_even(writer: PdfWriter) -> int:
    """Printed on both sides, every letter starts on the front of a sheet of its own: a letter
    with an odd number of pages is followed by a blank page (1 returned), so the next letter's
    first page can never be printed on the back of this one's last (and posted to the wrong
    family). The cover pages are evened out the same way."""
    if len(writer.pages) % 2 == 0:
        return 0
    writer.add_blank_page(*A4)
    return 1


def make_batch(directory: Path, day: date) -> Path | None:
    """Join every pending letter into one PDF for the post room; None when nothing is pending.

    Run again the same day, it makes ``<day>-2.pdf`` from what arrived since. A letter whose PDF
    cannot be read stays in ``pending/`` and is named in the log and the manifest's ``skipped``.
    """
    from pypdf import PdfReader, PdfWriter
    from pypdf.errors import PyPdfError

    batches, pending = directory / "batches", directory / "pending"
    private_dir(batches)
    private_dir(pending)
    with _locked(batches):
        _recover(directory)
        files = sorted(pending.glob(f"{PREFIX}*{SUFFIX}"), key=_order)
        letters: list[tuple[Path, PdfReader]] = []
        skipped: list[str] = []
        for path in files:
            key = _key(path)
            try:
                reader = PdfReader(path)
                if len(reader.pages) == 0:
                    raise PyPdfError("no pages")
                letters.append((path, reader))
            except (PyPdfError, OSError, ValueError) as exc:
                log.error("print: outbox %s cannot be read (%s); left in pending", key, type(exc).__name__)
                skipped.append(key)
        if not letters:
            return None
        stem = _batch_name(batches, day)
        entries: list[dict[str, Any]] = [{"key": _key(p), "pages": len(r.pages)} for p, r in letters]
        writer = PdfWriter()
        cover = _cover_pages(writer, stem, entries)
        _to_even(writer)
        for entry, (_, reader) in zip(entries, letters, strict=True):
            entry["first_page"] = len(writer.pages) + 1
            writer.append(reader, outline_item=f"outbox {entry['key']}", import_outline=False)
            entry["blank_after"] = _to_even(writer)
        first = len(writer.pages) + 1
        writer.add_metadata({"/Title": f"Caseloop print batch {stem}"})
        manifest = {
            "batch": stem,
            "day": day.isoformat(),
            "cover_pages": cover,
            "total_pages": first - 1,
            "letters": entries,
            "skipped": skipped,
        }
        half = batches / f".{stem}.json.tmp"
        _write_synced(half, json.dumps(manifest, indent=2).encode())
        _write_atomically(batches / f"{stem}.pdf", _pdf_bytes(writer))  # the commit point
        os.replace(half, batches / f"{stem}.json")
        for path, _ in letters:
            _move(path, directory / "batched" / day.isoformat())
        log.info("print: batch %s has %s letters, %s pages", stem, len(letters), first - 1)
        return batches / f"{stem}.pdf"


def _order(path: Path) -> tuple[int, str]:
    """Numeric keys (outbox ids) in number order, so the post room sees them as queued."""
    key = _key(path)
    return (int(key), "") if key.isdigit() else (1 << 62, key)


def _pdf_bytes(writer: PdfWriter) -> bytes:
    out = BytesIO()
    writer.write(out)
    return out.getvalue()
