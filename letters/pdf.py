"""Letters as PDF: A4, tagged for screen readers, cached by the hash of their HTML.

The page size, margins and the window-envelope address block come from the layout's CSS
(``@page { size: A4 }``); fonts come from the system (DejaVu Sans first, then faces covering the
scripts it lacks, such as Droid Sans Fallback or Noto Sans CJK for Chinese). A letter is made
once: the same HTML gives the same cached bytes, so a letter re-sent after a crash is the very
letter that was approved.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from workflow.errors import CaseloopError
from workflow.private_files import private_dir

# PDF/UA-1: tagged structure, document title and language, for screen readers.
ACCESSIBLE_VARIANT = "pdf/ua-1"


class PdfError(CaseloopError):
    """WeasyPrint could not make the PDF; the message says why. Not a :class:`RenderError`: the
    letter itself is sound (a time limit, a font missing for now), so the attempt is retried."""


def cache_path(html: str, cache_dir: Path) -> Path:
    """Where the PDF of ``html`` is cached: named by the sha256 of the HTML."""
    return cache_dir / f"{hashlib.sha256(html.encode('utf-8')).hexdigest()}.pdf"


def render_pdf(html: str, cache_dir: Path, *, assets: Path | None = None) -> bytes:
    """The PDF of ``html``, from the cache when this HTML was rendered before.

    ``assets`` is the one folder a letter may load files from (the council's logo), and the base
    for relative paths; nothing else is fetched. The cache key is the HTML alone, so a changed
    logo needs a new file name.
    """
    path = cache_path(html, cache_dir)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    pdf = _weasyprint(html, assets)
    _write_atomically(path, pdf)
    return pdf


def _options() -> dict[str, Any]:
    from weasyprint.pdf import VARIANTS

    if ACCESSIBLE_VARIANT in VARIANTS:
        return {"pdf_variant": ACCESSIBLE_VARIANT}
    return {"pdf_tags": True}  # older WeasyPrint: tagged, without the PDF/UA claim


def _fetcher(assets: Path | None) -> Any:
    from weasyprint.urls import URLFetcher

    allowed = assets.resolve() if assets is not None else None

    class LetterFetcher(URLFetcher):  # type: ignore[misc]
        """Letters fetch nothing from the network, and from disk only the assets folder."""

        def fetch(self, url: str, headers: Any = None) -> Any:
            if url.startswith("data:"):
                return super().fetch(url, headers)
            if allowed is not None and url.startswith("file:"):
                path = Path(url2pathname(urlsplit(url).path)).resolve()
                if path.is_relative_to(allowed):
                    return super().fetch(url, headers)
            raise ValueError(f"a letter may not load {url[:80]}")

    return LetterFetcher(allowed_protocols=("data", "file"))


def _weasyprint(html: str, assets: Path | None) -> bytes:
    # Imported here: WeasyPrint loads Pango and fonts, which only PDF work needs.
    from weasyprint import HTML

    base_url = assets.resolve().as_uri() + "/" if assets is not None else None
    try:
        document = HTML(string=html, base_url=base_url, url_fetcher=_fetcher(assets))
        pdf = document.write_pdf(**_options())
    except Exception as exc:  # WeasyPrint raises many kinds; every one means no letter
        raise PdfError(f"the PDF could not be made: {exc}") from exc
    if not isinstance(pdf, bytes) or not pdf.startswith(b"%PDF"):
        raise PdfError("the PDF could not be made: WeasyPrint returned no PDF")
    return pdf


def _write_atomically(path: Path, data: bytes) -> None:
    private_dir(path.parent)  # the cache holds letters as sent; mkstemp makes each file 0600
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
