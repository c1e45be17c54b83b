"""Letters as PDFs, made by the real WeasyPrint and read back with pypdf."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

import letters.pdf as pdf_module
from letters.catalogue import Catalogue, RenderedLetter
from letters.pdf import PdfError, cache_path, render_pdf
from tests import letter_factories as f

MM = 72 / 25.4  # points per millimetre
A4 = (595.28, 841.89)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue().load()


def read(pdf: bytes) -> PdfReader:
    assert pdf.startswith(b"%PDF-")
    return PdfReader(io.BytesIO(pdf))


def text_of(reader: PdfReader) -> str:
    return " ".join(" ".join(page.extract_text().split()) for page in reader.pages)


def positions(reader: PdfReader) -> dict[str, tuple[float, float]]:
    """Each line of text on page 1: (mm from the left edge, mm from the top) of its baseline."""
    found: dict[str, tuple[float, float]] = {}

    def visit(text: str, cm: list[float], tm: list[float], font: Any, size: float) -> None:
        x = tm[4] * cm[0] + cm[4]
        y = tm[5] * cm[3] + cm[5]
        if text.strip():
            found.setdefault(text.strip(), (x / MM, (A4[1] - y) / MM))

    reader.pages[0].extract_text(visitor_text=visit)
    return found


@pytest.mark.parametrize(
    ("key", "view", "expected"),
    [
        ("family_closing_letter", f.family(f.case()), [f.PARENT, "Rowan", "What we decided"]),
        ("family_closing_letter_easy_read", f.family(f.case(closure_reason="RC2")), [f.PARENT, "has died"]),
        ("family_decision", f.family(f.neighbour_case(decision="early_help")), [f.PARENT, "Rowan"]),
        ("school_worker_involved", f.school(f.case()), [f.SCHOOL_LEAD, f.CHILD, "1 May 2016", f.WORKER]),
        ("referrer_outcome", f.referrer(f.case()), [f.PROFESSIONAL, f.CHILD, "no further action"]),
        ("referrer_acknowledgement", f.referrer(f.neighbour_case()), [f.NEIGHBOUR, f.CHILD]),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_a_letter_becomes_an_accessible_a4_pdf(
    catalogue: Catalogue, tmp_path: Path, key: str, view: dict[str, Any], expected: list[str]
) -> None:
    letter = catalogue.render(key, view)
    reader = read(render_pdf(letter.html, tmp_path))
    for page in reader.pages:
        assert float(page.mediabox.width) == pytest.approx(A4[0], abs=1)
        assert float(page.mediabox.height) == pytest.approx(A4[1], abs=1)
    text = text_of(reader)
    for wanted in [f.council().name, f.council().front_door_phone, f.council().out_of_hours_phone, *expected]:
        assert wanted in text, wanted
    assert "<" not in text and "&#39;" not in text and "&amp;" not in text
    # Tagged for screen readers, with its language and the subject as the title.
    root = reader.trailer["/Root"]
    assert root["/Lang"] == "en" and "/StructTreeRoot" in root and root["/MarkInfo"]["/Marked"]
    assert reader.metadata is not None and reader.metadata.title == letter.subject


def test_the_address_shows_through_a_dl_window(catalogue: Catalogue, tmp_path: Path) -> None:
    view = f.family(f.case())
    reader = read(render_pdf(catalogue.render("family_closing_letter", view).html, tmp_path))
    where = positions(reader)
    lines = [f.PARENT, "1 Test Street", "EX1 2BB"]  # the town is in the council's address too
    for line in lines:
        left, down = where[line]
        assert left == pytest.approx(20, abs=1), line  # the window starts 20mm from the left edge
        assert 45 < down < 45 + 40, line  # and 45mm from the top, about 40mm deep
    assert [where[line][1] for line in lines] == sorted(where[line][1] for line in lines)
    left, down = where["Date: 16 March 2026"]
    assert left > 20 + 90 and down < 95  # beside the window, never in it
    _, heading_down = where["We have finished our work with your family"]
    assert heading_down > 85  # the letter itself starts below the window


def test_the_pdf_is_cached_by_the_hash_of_its_html(
    catalogue: Catalogue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    html = catalogue.render("referrer_closure_notice", f.referrer(f.case())).html
    calls: list[str] = []
    real = pdf_module._weasyprint

    def counting(source: str, assets: Path | None) -> bytes:
        calls.append(source)
        return real(source, assets)

    monkeypatch.setattr(pdf_module, "_weasyprint", counting)
    first = render_pdf(html, tmp_path / "cache")
    stored = cache_path(html, tmp_path / "cache")
    assert stored.read_bytes() == first and len(calls) == 1
    mtime = stored.stat().st_mtime_ns
    again = render_pdf(html, tmp_path / "cache")
    assert again == first and len(calls) == 1  # WeasyPrint was not called again
    assert stored.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [stored.name]  # no temporary left
    other = render_pdf(html.replace("Thank you", "Many thanks"), tmp_path / "cache")
    assert other != first and len(calls) == 2 and len(list((tmp_path / "cache").iterdir())) == 2


def test_a_cached_pdf_is_served_as_stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    html = "<html lang='en'><head><title>T</title></head><body><p>Hello</p></body></html>"
    cache_path(html, tmp_path).write_bytes(b"%PDF-stored")

    def refuse(source: str, assets: Path | None) -> bytes:
        raise AssertionError("a cache hit must not render")

    monkeypatch.setattr(pdf_module, "_weasyprint", refuse)
    assert render_pdf(html, tmp_path) == b"%PDF-stored"


def _png(width: int = 4, height: int = 4) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\x1d\x4f\x91" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = chunk(b"IDAT", zlib.compress(rows))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + pixels + chunk(b"IEND", b"")


def _images(pdf: bytes) -> int:
    count = 0
    for page in read(pdf).pages:
        objects = page["/Resources"].get("/XObject") or {}
        count += sum(1 for ref in objects.values() if ref.get_object()["/Subtype"] == "/Image")
    return count


def test_a_letter_loads_its_logo_from_the_assets_folder_only(tmp_path: Path) -> None:
    assets, elsewhere = tmp_path / "assets", tmp_path / "elsewhere"
    assets.mkdir()
    elsewhere.mkdir()
    (assets / "logo.png").write_bytes(_png())
    (elsewhere / "secret.png").write_bytes(_png())
    page = "<html lang='en'><head><title>T</title></head><body><img src='{}' alt=''><p>Hi</p></body></html>"
    assert _images(render_pdf(page.format("logo.png"), tmp_path / "c", assets=assets)) == 1
    outside = (elsewhere / "secret.png").as_uri()
    assert _images(render_pdf(page.format(outside), tmp_path / "c", assets=assets)) == 0
    assert _images(render_pdf(page.format("../elsewhere/secret.png"), tmp_path / "c", assets=assets)) == 0
    assert _images(render_pdf(page.format("http://127.0.0.1:9/logo.png"), tmp_path / "c", assets=assets)) == 0
    assert _images(render_pdf(page.format("logo.png"), tmp_path / "d")) == 0  # no assets folder: nothing


def test_a_failed_render_caches_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken:
        def __init__(self, **kwargs: Any) -> None:
            raise OSError("no fonts")

    monkeypatch.setattr("weasyprint.HTML", Broken)
    with pytest.raises(PdfError, match="the PDF could not be made: no fonts"):
        render_pdf("<p>x</p>", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_rendered_letters_record_what_was_sent(catalogue: Catalogue) -> None:
    letter: RenderedLetter = catalogue.render("family_decision", f.family(f.case(decision="early_help")))
    again = catalogue.render("family_decision", f.family(f.case(decision="early_help")))
    assert letter == again  # the same view gives the same letter and the same hash
    assert letter.content_hash != catalogue.render("family_decision", f.family(f.case())).content_hash


def _fonts(reader: PdfReader) -> set[str]:
    """The base names of the fonts embedded in the PDF (without their subset prefix)."""
    found = set()
    for page in reader.pages:
        for ref in (page["/Resources"].get("/Font") or {}).values():
            found.add(str(ref.get_object()["/BaseFont"]).split("+", 1)[-1])
    return found


@pytest.mark.parametrize(
    ("name", "font"),
    [
        ("Zofia Wróblewska-Łącka", "DejaVu-Sans"),  # Polish
        ("فاطمة الزهراء", "DejaVu-Sans"),  # Arabic
        ("Ольга Петренко", "DejaVu-Sans"),  # Ukrainian
        ("王小明", "Droid-Sans-Fallback"),  # Chinese: a face DejaVu lacks, found after it
    ],
)
def test_names_in_other_scripts_print_in_a_font_that_has_them(
    catalogue: Catalogue, tmp_path: Path, name: str, font: str
) -> None:
    view = f.family(f.case(household=[f.household_member(name=name)]))
    reader = read(render_pdf(catalogue.render("family_closing_letter", view).html, tmp_path))
    assert font in _fonts(reader)
    page_one = reader.pages[0].extract_text()
    assert page_one.count(name) >= 2  # in the window and in "Dear ..."; real glyphs, not boxes


def _rightmost(html: str) -> tuple[float, float]:
    """How far right any text reaches on any page, and where the right margin is (CSS px)."""
    from weasyprint import HTML
    from weasyprint.formatting_structure.boxes import TextBox

    document = HTML(string=html).render()
    reach = max(
        box.position_x + box.width
        for page in document.pages
        for box in page._page_box.descendants()
        if isinstance(box, TextBox)
    )
    return reach, document.pages[0].width - 20 * 96 / 25.4  # the sheet less its 20mm right margin


def test_a_long_name_wraps_inside_the_page(catalogue: Catalogue) -> None:
    name = "Wolfeschlegelsteinhausenbergerdorffvoralternwarengewissenhaftschaferswessenschafewaren"
    view = f.family(f.case(household=[f.household_member(name=name)]))
    html = catalogue.render("family_closing_letter", view).html
    reach, margin = _rightmost(html)
    assert reach <= margin + 1
    unwrapped, _ = _rightmost(html.replace("overflow-wrap: anywhere;", ""))
    assert unwrapped > margin + 100  # the same letter without wrapping runs off the page
