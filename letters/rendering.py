"""Jinja2 environments for every template caseloop renders.

Templates are loaded from this package (never by relative path), in a sandbox (a council may edit
them), with StrictUndefined so a missing field is an error rather than a blank. HTML is
autoescaped; plain text uses its own environment without escaping.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from jinja2 import PackageLoader, StrictUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from workflow.errors import CaseloopError


class RenderError(CaseloopError):
    """A template could not be rendered; the message names the template and the problem."""


class Templates:
    """Renders ``NAME.txt.j2`` and ``NAME.html.j2`` pairs from ``letters/templates``.

    Each template is compiled once and kept (the templates ship with caseloop: they change with
    a release, which starts new processes).
    """

    def __init__(self) -> None:
        self._compiled: dict[str, Template] = {}

    @cached_property
    def _text(self) -> SandboxedEnvironment:
        return SandboxedEnvironment(
            loader=PackageLoader("letters", "templates"),
            auto_reload=False,  # not stat'ed on every render: see the class
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
        )

    @cached_property
    def _html(self) -> SandboxedEnvironment:
        return SandboxedEnvironment(
            loader=PackageLoader("letters", "templates"),
            auto_reload=False,
            undefined=StrictUndefined,
            autoescape=True,
        )

    def _template(self, name: str) -> Template:
        found = self._compiled.get(name)
        if found is None:
            env = self._html if name.endswith(".html.j2") else self._text
            found = self._compiled[name] = env.get_template(name)
        return found

    def render(self, name: str, context: dict[str, Any]) -> tuple[str, str]:
        """The text and HTML renderings of template ``name`` with ``context``."""
        try:
            text = self._template(f"{name}.txt.j2").render(context)
            html = self._template(f"{name}.html.j2").render(context)
        except TemplateError as exc:
            raise RenderError(f"template {name}: {exc}") from exc
        return text, html
