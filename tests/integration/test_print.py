"""The print channel and the post room's daily batch (issue 4, part 6), on a real folder.

Letters are real PDFs made with WeasyPrint; batches are opened and read back with pypdf.
"""

from __future__ import annotations

import json
import logging
from datetime import date
from functools import cache
from io import BytesIO
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter
from weasyprint import HTML

import messaging.channels.printing as printing
from messaging.channels import PermanentDeliveryError
from messaging.channels.printing import PrintChannel, make_batch
from messaging.email import OutgoingEmail
from messaging.letter import OutgoingLetter
from messaging.outbox import OutboxMessage

DAY = date(2026, 11, 3)
CANARY_NAME = "Canary Zebedee Family"
CANARY_STREET = "1 Canary Row"


@cache
def pdf(key: str, pages: int) -> bytes:
    """A letter of ``pages`` pages, each saying which letter and page it is."""
    body = "".join(
        f'<section style="page-break-after: always"><p>{CANARY_NAME}</p><p>{CANARY_STREET}</p>'
        f"<p>letter {key} page {n}</p></section>"
        for n in range(1, pages + 1)
    )
    return HTML(string=body).write_pdf()  # type: ignore[no-any-return]


def blank_pdf(pages: int) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(595, 842)
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def letter(key: str, pages: int = 1, content: bytes | None = None) -> OutgoingLetter:
    return OutgoingLetter(
        key=key,
        reference=f"letter:case-{key}:closing:P1",
        recipient_name=CANARY_NAME,
        address_lines=(CANARY_STREET, "AB1 2CD"),
        subject="Closing letter",
        text="closed",
        html="<p>closed</p>",
        pdf=content if content is not None else pdf(key, pages),
    )


def confirmed(channel: PrintChannel, *keys: str) -> list[bool | None]:
    """``confirm`` as the stale-send sweeper calls it: with outbox rows (a letter's key is its id)."""
    return [channel.confirm(OutboxMessage(id=int(k), idempotency_key=f"letter:{k}")) for k in keys]


def send(channel: PrintChannel, *letters: OutgoingLetter) -> list[str]:
    return [channel.send(item, lambda: None) for item in letters]


def texts(path: Path) -> list[str]:
    return [page.extract_text() for page in PdfReader(path).pages]


def names(folder: Path, hidden: bool = False) -> list[str]:
    """File names in ``folder``; dotfiles (temporary files, the lock) only when ``hidden``."""
    found = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    return [n for n in found if n.startswith(".") == hidden]


def test_send_writes_the_pdf_atomically_and_hands_over_before_the_rename(tmp_path: Path) -> None:
    channel = PrintChannel(tmp_path)
    pending = tmp_path / "pending"
    at_handover: list[tuple[list[str], list[str]]] = []
    item = letter("7", pages=2)

    reference = channel.send(item, lambda: at_handover.append((names(pending), names(pending, hidden=True))))

    assert reference == "outbox-7.pdf"
    assert at_handover == [([], [".outbox-7.pdf.tmp"])]  # written in full, not yet pending
    assert (pending / "outbox-7.pdf").read_bytes() == item.pdf
    assert (names(pending), names(pending, hidden=True)) == (["outbox-7.pdf"], [])


def test_a_handover_that_refuses_leaves_no_pending_letter(tmp_path: Path) -> None:
    channel = PrintChannel(tmp_path)

    def superseded() -> None:
        raise RuntimeError("another attempt owns this letter")

    with pytest.raises(RuntimeError):
        channel.send(letter("7"), superseded)
    assert confirmed(channel, "7") == [False]
    assert make_batch(tmp_path, DAY) is None


def test_one_batch_holds_a_cover_and_every_pending_letter_in_order(tmp_path: Path) -> None:
    channel = PrintChannel(tmp_path)
    send(channel, letter("12", pages=1), letter("3", pages=2), letter("7", pages=3))
    assert confirmed(channel, "3", "7", "12", "99") == [True, True, True, False]

    batch = make_batch(tmp_path, DAY)

    assert batch == tmp_path / "batches" / "2026-11-03.pdf"
    pages = texts(batch)
    # Duplex: the cover and every letter take an even number of pages (a blank one added after the
    # cover, after 7's three pages and after 12's one), so each letter starts on a sheet of its own.
    assert len(pages) == (1 + 1) + 2 + (3 + 1) + (1 + 1)
    cover, letters_ = pages[0], pages[2:]
    assert pages[1].strip() == ""
    assert "3 letters" in cover and all(f"{k}: {n}" in cover for k, n in (("3", 2), ("7", 3), ("12", 1)))
    assert CANARY_NAME not in cover and CANARY_STREET not in cover  # keys and counts only
    order = (("3", 2, 0), ("7", 3, 1), ("12", 1, 1))
    expected = [f"letter {k} page {n}" for k, count, _ in order for n in range(1, count + 1)]
    printed = [next((ln for ln in p.splitlines() if ln.startswith("letter ")), "blank") for p in letters_]
    assert printed == [
        "letter 3 page 1",
        "letter 3 page 2",
        "letter 7 page 1",
        "letter 7 page 2",
        "letter 7 page 3",
        "blank",
        "letter 12 page 1",
        "blank",
    ]
    assert [p for p in printed if p != "blank"] == expected
    assert all(CANARY_NAME in p for p in letters_ if p.strip())  # the canary is really in the letters
    assert names(tmp_path / "pending") == []
    assert names(tmp_path / "batched" / "2026-11-03") == ["outbox-12.pdf", "outbox-3.pdf", "outbox-7.pdf"]
    manifest = json.loads((tmp_path / "batches" / "2026-11-03.json").read_text())
    assert manifest["letters"] == [
        {"key": "3", "pages": 2, "first_page": 3, "blank_after": 0},
        {"key": "7", "pages": 3, "first_page": 5, "blank_after": 1},
        {"key": "12", "pages": 1, "first_page": 9, "blank_after": 1},
    ]
    assert all(entry["first_page"] % 2 == 1 for entry in manifest["letters"])  # always a front side
    assert (manifest["total_pages"], manifest["cover_pages"], manifest["skipped"]) == (10, 1, [])
    assert confirmed(channel, "3", "7", "12", "99") == [True, True, True, False]  # batched


def test_a_second_batch_the_same_day_is_a_new_file_and_nothing_is_lost_or_repeated(tmp_path: Path) -> None:
    channel = PrintChannel(tmp_path)
    send(channel, letter("1"), letter("2", pages=2))
    first = make_batch(tmp_path, DAY)
    assert first is not None
    first_bytes = first.read_bytes()
    assert make_batch(tmp_path, DAY) is None  # nothing new: no empty batch

    send(channel, letter("5", pages=2))
    second = make_batch(tmp_path, DAY)

    assert second == tmp_path / "batches" / "2026-11-03-2.pdf"
    assert len(PdfReader(second).pages) == (1 + 1) + 2  # the cover evened out for duplex
    assert first.read_bytes() == first_bytes
    assert names(tmp_path / "batches") == [
        "2026-11-03-2.json",
        "2026-11-03-2.pdf",
        "2026-11-03.json",
        "2026-11-03.pdf",
    ]
    keys = [
        e["key"]
        for n in ("2026-11-03", "2026-11-03-2")
        for e in json.loads((tmp_path / "batches" / f"{n}.json").read_text())["letters"]
    ]
    assert keys == ["1", "2", "5"]
    assert make_batch(tmp_path, date(2026, 11, 4)) is None


def test_a_run_stopped_after_its_batch_was_written_is_finished_not_repeated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = PrintChannel(tmp_path)
    send(channel, letter("1"), letter("2"))

    def crash(path: Path, folder: Path) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(printing, "_move", crash)
    with pytest.raises(OSError, match="power cut"):
        make_batch(tmp_path, DAY)
    monkeypatch.undo()
    assert names(tmp_path / "pending") == ["outbox-1.pdf", "outbox-2.pdf"]  # the batch was committed

    assert make_batch(tmp_path, DAY) is None  # the next run only finishes the move
    assert names(tmp_path / "pending") == []
    assert names(tmp_path / "batched" / "2026-11-03") == ["outbox-1.pdf", "outbox-2.pdf"]
    assert names(tmp_path / "batches") == ["2026-11-03.json", "2026-11-03.pdf"]


def test_a_run_stopped_between_the_batch_and_its_manifest_is_finished(tmp_path: Path) -> None:
    channel = PrintChannel(tmp_path)
    send(channel, letter("1"), letter("2"))
    batch = make_batch(tmp_path, DAY)
    assert batch is not None
    # Put the folders back as a power cut right after the PDF's rename would have left them.
    batch.with_suffix(".json").rename(tmp_path / "batches" / ".2026-11-03.json.tmp")
    for name in ("outbox-1.pdf", "outbox-2.pdf"):
        (tmp_path / "batched" / "2026-11-03" / name).rename(tmp_path / "pending" / name)

    assert make_batch(tmp_path, DAY) is None  # committed with the PDF: finished, not printed again
    assert names(tmp_path / "batches") == ["2026-11-03.json", "2026-11-03.pdf"]
    assert names(tmp_path / "pending") == []
    assert confirmed(channel, "1", "2") == [True, True]


def test_a_run_stopped_before_its_batch_was_written_leaves_the_letters_for_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = PrintChannel(tmp_path)
    send(channel, letter("1"), letter("2"))
    real_write = printing._write_synced

    def crash(path: Path, data: bytes) -> None:
        if path.name.endswith(".pdf.tmp"):
            real_write(path, data[: len(data) // 2])  # half the batch PDF, then the power goes
            raise OSError("power cut")
        real_write(path, data)

    monkeypatch.setattr(printing, "_write_synced", crash)
    with pytest.raises(OSError, match="power cut"):
        make_batch(tmp_path, DAY)
    monkeypatch.undo()
    assert names(tmp_path / "batches") == []
    assert confirmed(channel, "1", "2") == [True, True]  # still pending, not batched

    batch = make_batch(tmp_path, date(2026, 11, 4))  # the next run is the next morning
    assert batch == tmp_path / "batches" / "2026-11-04.pdf"
    assert len(PdfReader(batch).pages) == 2 + 2 + 2  # the cover and each one-page letter, evened out
    assert names(tmp_path / "batches") == ["2026-11-04.json", "2026-11-04.pdf"]
    assert names(tmp_path / "batches", hidden=True) == [".lock"]  # the half-written files are gone


def test_the_print_channel_takes_letters_only(tmp_path: Path) -> None:
    mail = OutgoingEmail(to="a@example.org", subject="s", text="t", html="h", message_id="<m@caseloop>")
    handed: list[int] = []
    with pytest.raises(PermanentDeliveryError, match="not emails"):
        PrintChannel(tmp_path).send(mail, lambda: handed.append(1))
    assert handed == [] and names(tmp_path / "pending") == []


def test_an_unreadable_letter_stays_pending_and_the_rest_are_printed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    channel = PrintChannel(tmp_path)
    send(channel, letter("1"), letter("2", content=b"%PDF-1.7 this is not a PDF"))
    with caplog.at_level(logging.ERROR, logger="messaging.channels.printing"):
        batch = make_batch(tmp_path, DAY)
    assert batch is not None and len(PdfReader(batch).pages) == 2 + 2  # the cover and letter 1, evened
    assert names(tmp_path / "pending") == ["outbox-2.pdf"]
    assert json.loads(batch.with_suffix(".json").read_text())["skipped"] == ["2"]
    assert any("outbox 2" in r.getMessage() for r in caplog.records)


def test_a_big_day_gets_more_cover_pages_and_still_every_letter(tmp_path: Path) -> None:
    channel = PrintChannel(tmp_path)
    count = printing._ROWS * printing._COLUMNS + 10
    one_page = blank_pdf(1)
    send(channel, *(letter(str(k), content=one_page) for k in range(1, count + 1)))
    batch = make_batch(tmp_path, DAY)
    assert batch is not None
    reader = PdfReader(batch)
    assert len(reader.pages) == 2 + 2 * count  # two cover pages; each one-page letter and a blank
    covers = reader.pages[0].extract_text() + reader.pages[1].extract_text()
    assert f"{count} letters" in covers and "Cover page 2 of 2" in covers
    assert all(f"\n{k}: 1" in f"\n{covers}" for k in range(1, count + 1))
