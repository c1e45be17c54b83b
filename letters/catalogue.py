"""The letter catalogue: the manifest, the sandboxed environments, the load-time check, rendering.

Every letter template is a pair, ``letters/<key>.html.j2`` and ``letters/<key>.txt.j2``, under
``letters/templates`` (loaded from the package, never by a relative path), with an entry in
``manifest.yaml`` saying which fields of the audience's view-model it may use. The catalogue
refuses to load while any template reads an undeclared field, leaves out a macro argument,
reaches for a ``_private`` attribute or cannot be parsed; and it refuses to render a letter
whose view lacks a declared field or leaves one empty. A held letter is better than a letter
with a blank in it.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from jinja2 import (
    BaseLoader,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
    nodes,
)
from jinja2.sandbox import ImmutableSandboxedEnvironment

from letters.manifest import Entry, parse_manifest
from letters.rendering import RenderError
from letters.template_check import Findings, analyse, macro_call_problems

MANIFEST = "manifest.yaml"
# Provided by the catalogue itself: the rendered subject, for the HTML title.
RESERVED = frozenset({"subject"})
Kind = Literal["html", "txt"]
_MISSING = object()
_IMMUTABLE = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class Problem:
    """Something wrong with a template: which letter, which file, which field, and what."""

    key: str
    template: str
    message: str
    field: str | None = None

    def __str__(self) -> str:
        return f"{self.key}: {self.template}: {self.message}"


@dataclass(frozen=True)
class RenderedLetter:
    key: str
    version: int
    subject: str
    text: str
    html: str
    content_hash: str  # sha256 of the text followed by the HTML


def _printable(value: Any) -> Any:
    # A None that reaches the page would print as "None": hold the letter instead.
    if value is None:
        raise UndefinedError("a field with no value was printed")
    return value


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | tuple | dict) and len(value) == 0)


def _declared(path: str, entry: Entry) -> bool:
    return any(path == field or path.startswith(field + ".") for field in entry.paths)


class Catalogue:
    """The council's letter templates, checked before use.

    ``root`` points at a template folder on disk (tests); by default the templates are the ones
    shipped in this package.
    """

    def __init__(self, root: Path | None = None) -> None:
        self.root = root
        self._checked = False
        # Each template compiled once: files by (kind, name), subjects by (key, source). A subject
        # compiled on every render made an HTML letter several times slower than Jinja2 itself.
        self._files: dict[tuple[Kind, str], Template] = {}
        self._subjects: dict[tuple[str, str], Template] = {}
        loader = self._loader()
        try:
            source, _, _ = loader.get_source(self.text_env, MANIFEST)
        except TemplateNotFound as exc:
            raise RenderError(f"the letter templates have no {MANIFEST}") from exc
        self._entries = parse_manifest(source, MANIFEST)

    def _loader(self) -> BaseLoader:
        if self.root is not None:
            return FileSystemLoader(self.root)
        return PackageLoader("letters", "templates")

    def _environment(self, autoescape: bool) -> ImmutableSandboxedEnvironment:
        return ImmutableSandboxedEnvironment(
            loader=self._loader(),
            # What is rendered is what was checked at load: a template edited on disk afterwards
            # is not picked up (nor stat'ed on every render) until the catalogue is loaded again.
            auto_reload=False,
            undefined=StrictUndefined,
            autoescape=autoescape,
            finalize=_printable,
            trim_blocks=not autoescape,
            lstrip_blocks=not autoescape,
            keep_trailing_newline=not autoescape,
        )

    @cached_property
    def html_env(self) -> ImmutableSandboxedEnvironment:
        return self._environment(autoescape=True)

    @cached_property
    def text_env(self) -> ImmutableSandboxedEnvironment:
        return self._environment(autoescape=False)

    def env(self, kind: Kind) -> ImmutableSandboxedEnvironment:
        return self.html_env if kind == "html" else self.text_env

    def template(self, kind: Kind, name: str) -> Template:
        """The compiled template file ``name`` (compiled on first use, then kept)."""
        found = self._files.get((kind, name))
        if found is None:
            found = self._files[kind, name] = self.env(kind).get_template(name)
        return found

    def subject_template(self, entry: Entry) -> Template:
        """The compiled subject line of ``entry`` (kept by key and source)."""
        found = self._subjects.get((entry.key, entry.subject))
        if found is None:
            found = self._subjects[entry.key, entry.subject] = self.text_env.from_string(entry.subject)
        return found

    # Listing

    def keys(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        return [self._entries[key] for key in self.keys()]

    def entry(self, key: str) -> Entry:
        try:
            return self._entries[key]
        except KeyError:
            raise RenderError(f"no letter template {key!r} in the manifest") from None

    # Checking

    def check(self) -> list[Problem]:
        """Every problem with every template; an empty list means the catalogue may be used."""
        problems: list[Problem] = []
        for entry in self.entries():
            used: set[str] = set()
            for kind in ("html", "txt"):
                name = f"letters/{entry.key}.{kind}.j2"
                problems += self._check_tree(entry, kind, name, used)
            problems += self._check_subject(entry, used)
            used.update(entry.choices)  # a field read only to guard the letter is still read
            for path in entry.paths:
                if not any(use == path or use.startswith(path + ".") for use in used):
                    problems.append(
                        Problem(entry.key, MANIFEST, f"field {path} is declared but never used", path)
                    )
        problems += self._orphans()
        return problems

    def _parse(self, kind: Kind, name: str) -> nodes.Template:
        env = self.env(kind)
        source, filename, _ = env.loader.get_source(env, name)  # type: ignore[union-attr]
        tree = env.parse(source, name, filename)
        self.template(kind, name)  # compiles too (kept for rendering): some mistakes only show there
        return tree

    def _check_tree(self, entry: Entry, kind: Kind, top: str, used: set[str]) -> list[Problem]:
        """The template ``top`` and everything it extends, includes or imports, read whole."""
        problems: list[Problem] = []
        findings: dict[str, Findings] = {}
        pending, seen = [top], {top}
        while pending:
            name = pending.pop()
            try:
                found = findings[name] = analyse(self._parse(kind, name))
            except TemplateNotFound:
                problems.append(Problem(entry.key, name, "the template file is missing"))
                continue
            except TemplateSyntaxError as exc:
                problems.append(Problem(entry.key, name, f"line {exc.lineno}: {exc.message}"))
                continue
            except TemplateError as exc:
                problems.append(Problem(entry.key, name, f"cannot be compiled: {exc}"))
                continue
            problems += self._check_uses(entry, name, found, used)
            for ref, lineno in found.references:
                if ref is None:
                    problems.append(Problem(entry.key, name, f"line {lineno}: a template name must be fixed"))
                elif ref not in seen:
                    seen.add(ref)
                    pending.append(ref)
        for name in findings:
            problems += [
                Problem(entry.key, name, message, argument)
                for message, argument in macro_call_problems(name, findings)
            ]
        return problems

    def _check_uses(self, entry: Entry, name: str, found: Findings, used: set[str]) -> list[Problem]:
        problems = [
            Problem(entry.key, name, f"line {lineno}: attribute {attr} is not allowed")
            for attr, lineno in found.private
        ]
        for use in found.uses:
            if use.chain[0] in RESERVED:
                continue
            used.add(use.path)
            if not _declared(use.path, entry):
                message = f"line {use.lineno}: field {use.path} is not declared in the manifest"
                problems.append(Problem(entry.key, name, message, use.path))
        return problems

    def _check_subject(self, entry: Entry, used: set[str]) -> list[Problem]:
        where = f"{MANIFEST} subject"
        try:
            found = analyse(self.text_env.parse(entry.subject))
            self.subject_template(entry)
        except TemplateError as exc:
            return [Problem(entry.key, where, f"cannot be parsed: {exc}")]
        problems = self._check_uses(entry, where, found, used)
        problems += [
            Problem(entry.key, where, f"the subject must not use {use.path}: it may name the child", use.path)
            for use in found.uses
            if use.chain[0] == "child"
        ]
        if found.references or found.calls:
            problems.append(Problem(entry.key, where, "a subject uses fields and filters only"))
        return problems

    def _orphans(self) -> list[Problem]:
        problems = []
        for name in self.text_env.list_templates(filter_func=lambda n: n.startswith("letters/")):
            stem = name.removeprefix("letters/")
            for suffix in (".html.j2", ".txt.j2"):
                if stem.endswith(suffix) and stem.removesuffix(suffix) not in self._entries:
                    key = stem.removesuffix(suffix)
                    problems.append(Problem(key, name, "the template has no entry in the manifest"))
        return problems

    def load(self) -> Catalogue:
        """Check every template; raise :class:`RenderError` listing the problems if any."""
        problems = self.check()
        if problems:
            raise RenderError("letter templates refused:\n" + "\n".join(f"- {p}" for p in problems))
        self._checked = True
        return self

    # Rendering

    def context(self, entry: Entry, view: Mapping[str, Any]) -> dict[str, Any]:
        """Only the declared fields of ``view``; raises if a required one is missing or empty."""
        context: dict[str, Any] = {}
        for field in entry.plan:
            value: Any = view
            for part in field.parts:
                # A dict is checked first: the Mapping check is an ABC's, and slower.
                if (type(value) is dict or isinstance(value, Mapping)) and part in value:
                    value = value[part]
                else:
                    value = _MISSING
                    break
            if field.required and (value is _MISSING or _empty(value)):
                state = "missing from" if value is _MISSING else "empty in"
                raise RenderError(f"template {entry.key}: field {field.path} is {state} the view")
            allowed = field.choices
            if allowed is not None and value is not _MISSING and value is not None and value not in allowed:
                choices = ", ".join(str(choice) for choice in allowed)
                raise RenderError(f"template {entry.key}: field {field.path} must be one of: {choices}")
            target = context
            for part in field.parts[:-1]:
                target = target.setdefault(part, {})
            # A copy, so a template cannot change the view; a string or number needs none.
            target[field.parts[-1]] = (
                None
                if value is _MISSING
                else value
                if isinstance(value, _IMMUTABLE)
                else copy.deepcopy(value)
            )
        return context

    def render(self, key: str, view: Mapping[str, Any]) -> RenderedLetter:
        """The letter ``key`` for ``view`` (a view-model from :mod:`letters.views`)."""
        if not self._checked:
            self.load()
        entry = self.entry(key)
        context = self.context(entry, view)
        try:
            subject = " ".join(self.subject_template(entry).render(context).split())
            text = self.template("txt", f"letters/{key}.txt.j2").render(context, subject=subject)
            html = self.template("html", f"letters/{key}.html.j2").render(context, subject=subject)
        except TemplateError as exc:
            raise RenderError(f"template {key}: {exc}") from exc
        if not subject:
            raise RenderError(f"template {key}: the subject is empty")
        digest = hashlib.sha256((text + html).encode("utf-8")).hexdigest()
        return RenderedLetter(key, entry.version, subject, text, html, digest)
