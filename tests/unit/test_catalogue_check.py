"""The catalogue's load-time check and its sandbox, on small template folders made for each test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from jinja2.sandbox import SecurityError

from letters.catalogue import Catalogue
from letters.manifest import ManifestError
from letters.rendering import RenderError
from tests import letter_factories as f

MANIFEST = """
note:
  version: 2
  audience: family
  channels: [post]
  subject: "{subject}"
  description: A test letter.
  fields: [{fields}]
"""
VIEW: dict[str, Any] = {
    "recipient": {"name": "Alex Parent", "secret": "S3CRET"},
    "child": {"first_name": "Rowan"},
}


def folder(
    root: Path,
    html: str | None = "Dear {{ recipient.name }}",
    text: str | None = "Dear {{ recipient.name }}",
    fields: str = "recipient.name",
    subject: str = "A letter",
    manifest: str | None = None,
    files: dict[str, str] | None = None,
) -> Catalogue:
    """A catalogue over ``root`` with one template, ``note``; ``files`` are extra templates."""
    (root / "letters").mkdir(parents=True, exist_ok=True)
    quoted = ", ".join(f'"{field.strip()}"' for field in fields.split(","))
    (root / "manifest.yaml").write_text(manifest or MANIFEST.format(subject=subject, fields=quoted))
    for kind, source in (("html", html), ("txt", text)):
        if source is not None:
            (root / "letters" / f"note.{kind}.j2").write_text(source)
    for name, source in (files or {}).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return Catalogue(root=root)


def problems(catalogue: Catalogue) -> list[str]:
    return [str(problem) for problem in catalogue.check()]


def test_a_clean_folder_loads_and_renders(tmp_path: Path) -> None:
    catalogue = folder(tmp_path, subject="Your letter").load()
    letter = catalogue.render("note", VIEW)
    assert (letter.text, letter.html, letter.subject, letter.version) == (
        "Dear Alex Parent",
        "Dear Alex Parent",
        "Your letter",
        2,
    )


def test_an_undeclared_field_is_refused_at_load(tmp_path: Path) -> None:
    catalogue = folder(tmp_path, html="Dear {{ recipient.name }}, about {{ child.first_name }}")
    found = catalogue.check()
    assert [(p.key, p.template, p.field) for p in found] == [
        ("note", "letters/note.html.j2", "child.first_name")
    ]
    with pytest.raises(RenderError) as caught:
        catalogue.load()
    assert "note: letters/note.html.j2: line 1: field child.first_name is not declared" in str(caught.value)
    with pytest.raises(RenderError, match=r"child\.first_name"):
        catalogue.render("note", VIEW)


@pytest.mark.parametrize(
    ("source", "field"),
    [
        ("{{ recipient }}", "recipient"),  # the whole object: wider than what is declared
        ("{{ recipient['secret'] }}", "recipient.secret"),
        ("{{ recipient.secret|upper }}", "recipient.secret"),
        ("{% if recipient.secret %}x{% endif %}", "recipient.secret"),
        ("{{ recipient|attr('secret') }}", "recipient"),
        ("{% for line in household %}{{ line }}{% endfor %}", "household"),
        ("{% set r = recipient %}{{ r.secret }}", "recipient"),
        ("{% macro m(x) %}{{ x }}{{ child.first_name }}{% endmacro %}{{ m(1) }}", "child.first_name"),
        ("{% call(s) caller_macro(recipient.name) %}{{ s }}{% endcall %}", "caller_macro"),
        ("{{ cycler.__init__.__globals__ }}", "cycler.__init__.__globals__"),
    ],
)
def test_every_way_of_reading_a_field_is_seen(tmp_path: Path, source: str, field: str) -> None:
    catalogue = folder(tmp_path, html=f"{{{{ recipient.name }}}}{source}")
    assert field in [p.field for p in catalogue.check()]


def test_loop_variables_and_names_set_inside_are_not_fields(tmp_path: Path) -> None:
    html = (
        "{% set greeting = 'Dear' %}{{ greeting }} {{ recipient.name }}"
        "{% for line in recipient.address_lines %}{{ loop.index }} {{ line.upper() }}{% endfor %}"
        "{% macro sign(who, role='worker') %}{{ who }} {{ role }} {{ caller() }}{% endmacro %}"
        "{% call sign('Pat') %}x{% endcall %}{% with n = namespace(count=0) %}{{ n.count }}{% endwith %}"
        "{% for a, b in [(1, 2)] %}{{ a }}{{ b }}{% endfor %}{{ range(2)|list }}"
    )
    catalogue = folder(tmp_path, html=html, fields="recipient.name, recipient.address_lines?")
    assert problems(catalogue) == []
    view = {"recipient": {"name": "Alex", "address_lines": ["1 Street"]}}
    assert "1 1 STREET" in catalogue.load().render("note", view).html


def test_layouts_macros_and_includes_are_checked_for_each_letter(tmp_path: Path) -> None:
    catalogue = folder(
        tmp_path,
        html='{% extends "layouts/base.html.j2" %}{% block body %}{{ recipient.name }}{% endblock %}',
        text='{% import "layouts/words.j2" as words %}{{ words.hello(recipient.name) }}'
        '{% include "layouts/part.txt.j2" %}',
        files={
            "layouts/base.html.j2": "<h1>{{ council.name }}</h1>{% block body %}{% endblock %}",
            "layouts/words.j2": "{% macro hello(n) %}Hello {{ n }} from {{ council.phone }}{% endmacro %}",
            "layouts/part.txt.j2": "{{ child.dob }}",
        },
    )
    found = {(p.template, p.field) for p in catalogue.check()}
    assert found == {
        ("layouts/base.html.j2", "council.name"),
        ("layouts/words.j2", "council.phone"),
        ("layouts/part.txt.j2", "child.dob"),
    }


def test_a_missing_macro_argument_is_refused_at_load(tmp_path: Path) -> None:
    # StrictUndefined alone lets these through: an unused, tested or defaulted argument.
    html = (
        "{% macro sign(name, team, role='worker') %}{{ name }}{{ team|default('') }}{% endmacro %}"
        "{{ sign(recipient.name) }}{{ sign(recipient.name, 'a') }}{{ sign(name=recipient.name, team='b') }}"
    )
    text = (
        '{% import "layouts/words.j2" as words %}{% from "layouts/words.j2" import greet as hi %}'
        "{{ words.greet() }}{{ hi(recipient.name) }}{{ words.nothing(1) }}"
        "{% call(s) words.greet() %}{{ s }}{% endcall %}"
    )
    catalogue = folder(
        tmp_path,
        html=html,
        text=text,
        files={
            "layouts/words.j2": "{% macro greet(name) %}{% if name is defined %}{{ name }}{% endif %}"
            "{% endmacro %}"
        },
    )
    found = [str(p) for p in catalogue.check()]
    assert found == [
        "note: letters/note.html.j2: line 1: macro sign is called without argument team",
        "note: letters/note.txt.j2: line 1: macro words.greet is called without argument name",
        "note: letters/note.txt.j2: line 1: macro words.nothing is not defined",
        "note: letters/note.txt.j2: line 1: macro words.greet is called without argument name",
    ]
    assert [p.field for p in catalogue.check()][:2] == ["team", "name"]
    with pytest.raises(RenderError, match="without argument team"):
        catalogue.load()


def test_missing_files_syntax_errors_and_strays_are_reported(tmp_path: Path) -> None:
    catalogue = folder(
        tmp_path,
        text=None,
        html="{% if recipient.name %}unclosed",
        files={"letters/stray.txt.j2": "{{ anything }}"},
    )
    found = problems(catalogue)
    assert "note: letters/note.txt.j2: the template file is missing" in found
    assert any(p.startswith("note: letters/note.html.j2: line 1: Unexpected end of template") for p in found)
    assert "stray: letters/stray.txt.j2: the template has no entry in the manifest" in found


def test_a_computed_template_name_and_a_missing_layout_are_refused(tmp_path: Path) -> None:
    catalogue = folder(
        tmp_path,
        html='{% include recipient.name %}{% extends "layouts/gone.html.j2" %}',
    )
    found = problems(catalogue)
    assert "note: letters/note.html.j2: line 1: a template name must be fixed" in found
    assert "note: layouts/gone.html.j2: the template file is missing" in found


def test_a_declared_field_nothing_uses_is_reported(tmp_path: Path) -> None:
    catalogue = folder(tmp_path, fields="recipient.name, child.first_name")
    assert problems(catalogue) == ["note: manifest.yaml: field child.first_name is declared but never used"]


@pytest.mark.parametrize(
    ("subject", "problem"),
    [
        ("About {{ child.first_name }}", "the subject must not use child.first_name: it may name the child"),
        ("For {{ recipient.secret }}", "field recipient.secret is not declared in the manifest"),
        ("{% include 'x' %}", "a subject uses fields and filters only"),
        ("{{ oops", "cannot be parsed"),
    ],
)
def test_a_subject_never_names_the_child(tmp_path: Path, subject: str, problem: str) -> None:
    fields = "recipient.name, child.first_name" if "child" in subject else "recipient.name"
    catalogue = folder(tmp_path, subject=subject, fields=fields)
    assert any(p.startswith("note: manifest.yaml subject: ") and problem in p for p in problems(catalogue))


ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''|attr('__class__') }}",
    "{{ ''['__class__'] }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ lipsum.__globals__ }}",
    "{{ lipsum|attr('__globals__') }}",
    "{{ namespace.__init__ }}",
    "{{ self.__init__ }}",
    "{{ (1).__class__ }}",
    "{{ '{0.__class__}'.format('') }}",
    "{{ ('{0.__class__}'|attr('format'))('') }}",
    "{{ '{a.__class__}'.format_map({'a': ''}) }}",
    "{% set x = [] %}{{ x.append(1) }}",
]


@pytest.mark.parametrize("source", ESCAPES)
@pytest.mark.parametrize("kind", ["html", "txt"])
def test_the_sandbox_refuses_escapes(source: str, kind: str) -> None:
    env = Catalogue().env(kind)  # type: ignore[arg-type]
    with pytest.raises(SecurityError):
        env.from_string(source).render()


@pytest.mark.parametrize("source", ESCAPES)
def test_an_escape_in_a_letter_never_renders(tmp_path: Path, source: str) -> None:
    catalogue = folder(tmp_path, html="{{ recipient.name }}" + source)
    with pytest.raises(RenderError):  # refused at load, or else by the sandbox at render
        catalogue.load()
        catalogue.render("note", VIEW)


def test_a_none_printed_holds_the_letter(tmp_path: Path) -> None:
    catalogue = folder(
        tmp_path,
        html="Dear {{ recipient.name }} {{ child.first_name }}",
        fields="recipient.name, child.first_name?",
    ).load()
    assert catalogue.render("note", VIEW).html == "Dear Alex Parent Rowan"
    with pytest.raises(RenderError, match="template note: a field with no value was printed"):
        catalogue.render("note", {"recipient": {"name": "Alex"}})


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ("audience: neighbours", "manifest.yaml: note: audience: Input should be"),
        ("version: 0", "manifest.yaml: note: version: Input should be greater than or equal to 1"),
        ("channels: [pigeon]", "manifest.yaml: note: channels.0: Input should be 'email' or 'post'"),
        ("fields: [Recipient Name]", "manifest.yaml: note: fields: 'Recipient Name' is not"),
        ("fields: [a.b, 'a.b?']", "manifest.yaml: note: fields: a.b declared more than once"),
        ("fields: [recipient, recipient.name]", "recipient is declared alongside recipient.name"),
        ("choices: {x.y: [a]}", "manifest.yaml: note: choices: x.y is not one of the declared"),
        ("colour: blue", "manifest.yaml: note: colour: Extra inputs are not permitted"),
    ],
)
def test_manifest_errors_name_the_key(tmp_path: Path, settings: str, message: str) -> None:
    entry = {
        "version": "version: 1",
        "audience": "audience: family",
        "channels": "channels: [post]",
        "subject": "subject: A letter",
        "description": "description: A test.",
        "fields": "fields: [recipient.name]",
    }
    entry[settings.split(":")[0]] = settings
    manifest = "note:\n" + "".join(f"  {line}\n" for line in entry.values() if line)
    with pytest.raises(ManifestError) as caught:
        folder(tmp_path, manifest=manifest)
    assert message in str(caught.value)


def test_a_folder_without_a_manifest_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match=r"no manifest\.yaml"):
        Catalogue(root=tmp_path)


def test_listing(tmp_path: Path) -> None:
    catalogue = folder(tmp_path)
    assert catalogue.keys() == ["note"]
    assert [(e.key, e.audience, e.channels, e.paths) for e in catalogue.entries()] == [
        ("note", "family", ("post",), ("recipient.name",))
    ]
    assert Catalogue().entry("family_closing_letter").optional >= {"support.worker_name"}
    assert f.TODAY.year == 2026
