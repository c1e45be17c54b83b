"""Letters: HTML letters a second through caseloop's renderer, and PDF letters a second.

Targets: caseloop renders HTML letters at no less than 0.8x the rate raw Jinja2 renders the same
templates with the same context, and PDF letters at no less than 0.9x the rate raw WeasyPrint
turns the same HTML into a PDF.

The letters are real ones of a synthetic borough (imported through the intake on SQLite): the
referrer's acknowledgement and the family's closing letter. The view-model is built once per
letter, as the relay builds it; the figure times what follows it, the catalogue's render: the
declared fields picked out of the view, the subject, the text and the HTML, and the content
hash. The raw baseline renders the same three templates (subject, text, HTML), given the same
context, with Jinja2 configured as caseloop configures it: the immutable sandbox (council-edited
templates are never rendered outside it), StrictUndefined, autoescape for HTML, the same
whitespace rules and ``finalize``. How far the sandbox itself costs is shown beside it: the same
templates in a plain ``jinja2.Environment``. For the PDFs caseloop's
cache is emptied before each letter, so every one is really made, as a new letter is.
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.harness import Bench, Figure
from config.settings import Settings
from config.wiring import build_runtime
from migrations import upgrade
from services import intake
from services.actors import SYSTEM
from services.people import import_staff
from services.runtime import Runtime
from workflow.demo import Borough, staff_csv

NOW = datetime.fromisoformat("2026-11-27T17:00:00+00:00")
KINDS = ("referrer_acknowledgement", "family_closing_letter")
HTML_TARGET, PDF_TARGET = 0.8, 0.9
TEMPLATES = Path(__file__).resolve().parents[1] / "letters" / "templates"


def _orders(rt: Runtime) -> dict[str, Any]:
    """One outbox row of each kind, as the relay reads it (the borough's own letters)."""
    from sqlalchemy import select

    from messaging.compose import order_of
    from messaging.outbox import OutboxMessage

    found: dict[str, Any] = {}
    with rt.reading() as uow:
        for kind in KINDS:
            row = uow.session.scalars(
                select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)
            ).first()
            if row is None:
                raise RuntimeError(f"the borough made no {kind} letter")
            found[kind] = (order_of(row), rt.letters.view(uow.session, order_of(row), NOW))
    return found


def _raw_environment(autoescape: bool, sandboxed: bool = True) -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from letters.catalogue import _printable

    kind = ImmutableSandboxedEnvironment if sandboxed else Environment
    return kind(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        autoescape=autoescape,
        finalize=_printable,
        trim_blocks=not autoescape,
        lstrip_blocks=not autoescape,
        keep_trailing_newline=not autoescape,
    )


def _raw_render(kind: str, subject: str, sandboxed: bool) -> Any:
    """Render the three templates of ``kind`` with raw Jinja2, for a context given."""
    html_env, text_env = _raw_environment(True, sandboxed), _raw_environment(False, sandboxed)
    s = text_env.from_string(subject)
    t = text_env.get_template(f"letters/{kind}.txt.j2")
    h = html_env.get_template(f"letters/{kind}.html.j2")

    def render(context: dict[str, Any]) -> str:
        line = " ".join(s.render(context).split())
        return str(t.render(context, subject=line)) + str(h.render(context, subject=line))

    return render


def _rate(action: Any, count: int) -> float:
    action()  # warm: first compilations and imports are not the steady state
    start = time.perf_counter()
    for _ in range(count):
        action()
    return count / (time.perf_counter() - start)


def _html_figures(rt: Runtime, orders: dict[str, Any], count: int) -> list[Figure]:
    catalogue = rt.catalogue
    figures = []
    for kind, (_, view) in orders.items():
        entry = catalogue.entry(kind)
        context = catalogue.context(entry, view)
        sandboxed, plain = _raw_render(kind, entry.subject, True), _raw_render(kind, entry.subject, False)

        def raw(context: dict[str, Any] = context, render: Any = sandboxed) -> str:
            return str(render(context))

        def unsandboxed(context: dict[str, Any] = context, render: Any = plain) -> str:
            return str(render(context))

        def ours(kind: str = kind, view: dict[str, Any] = view) -> str:
            return catalogue.render(kind, view).html

        # Interleaved halves, so load from the machine's other users falls on both alike.
        half = max(1, count // 2)
        rates = {"raw": 0.0, "ours": 0.0, "plain": 0.0}
        for _ in range(2):
            for name, action in (("raw", raw), ("ours", ours), ("plain", unsandboxed)):
                rates[name] += _rate(action, half) / 2
        mine, base = rates["ours"], rates["raw"]
        ratio = mine / base
        figures.append(
            Figure(
                f"HTML letters, {kind}",
                f"{mine:,.0f}/s",
                f"{base:,.0f}/s raw Jinja2",
                ratio,
                f"≥ {HTML_TARGET}x",
                ratio >= HTML_TARGET,
                note=f"{count} renders each; subject, text and HTML on both sides, in the same sandboxed "
                f"environment; without the sandbox raw Jinja2 makes {rates['plain']:,.0f}/s "
                f"({mine / rates['plain']:.2f}x)",
            )
        )
    return figures


def _pdf_figure(rt: Runtime, orders: dict[str, Any], count: int, cache: Path) -> Figure:
    from weasyprint import HTML

    from letters.pdf import ACCESSIBLE_VARIANT, _options

    rendered = [rt.catalogue.render(kind, view) for kind, (_, view) in orders.items()]
    options = _options()

    def ours(letter: Any) -> bytes:
        return rt.letters.pdf(letter)

    def forget() -> None:
        # A new letter: nothing cached. Emptying the cache is the benchmark's own setup, so it
        # is done outside the timed call; the cache write caseloop makes is timed.
        shutil.rmtree(cache, ignore_errors=True)

    def raw(letter: Any) -> bytes:
        return bytes(HTML(string=letter.html).write_pdf(**options))

    samples: dict[str, float] = {"ours": 0.0, "raw": 0.0}
    for letter in rendered:
        forget()
        ours(letter), raw(letter)  # warm: fonts, WeasyPrint's imports
    made = 0
    for _ in range(count):
        for letter in rendered:
            for name, action in (("raw", raw), ("ours", ours)):
                forget()
                start = time.perf_counter()
                action(letter)
                samples[name] += time.perf_counter() - start
            made += 1
    mine, base = made / samples["ours"], made / samples["raw"]
    ratio = mine / base
    return Figure(
        "PDF letters",
        f"{mine:.1f}/s",
        f"{base:.1f}/s raw WeasyPrint",
        ratio,
        f"≥ {PDF_TARGET}x",
        ratio >= PDF_TARGET,
        note=f"{made} PDFs each ({', '.join(KINDS)}), {options.get('pdf_variant', 'tagged')} on both sides"
        + ("" if options.get("pdf_variant") == ACCESSIBLE_VARIANT else " (no PDF/UA in this WeasyPrint)"),
    )


def run(bench: Bench) -> list[Figure]:
    url = bench.sqlite_url("letters")
    upgrade(url)
    rt = build_runtime(Settings(database_url=url, var_dir=bench.folder / "letters-var"))
    cache = rt.settings.pdf_cache_dir
    try:
        borough = Borough(seed=2026, weeks=2, per_week=40, zone=rt.settings.zone, calendar=rt.book.calendar)
        events = [json.dumps(e) for e in borough.events(NOW)]
        import_staff(rt, SYSTEM, staff_csv().splitlines(), NOW)
        intake.import_events(rt, SYSTEM, events, "bench", NOW)
        orders = _orders(rt)
        figures = _html_figures(rt, orders, 2000 if bench.quick else 10000)
        figures.append(_pdf_figure(rt, orders, 3 if bench.quick else 25, cache))
    finally:
        rt.close()
    return figures
