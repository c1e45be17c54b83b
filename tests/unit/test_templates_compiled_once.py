"""Each template is compiled once per catalogue: rendering again reuses what the load compiled."""

from __future__ import annotations

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from letters.catalogue import Catalogue


def test_rendering_compiles_no_template_after_the_load(monkeypatch: pytest.MonkeyPatch) -> None:
    catalogue = Catalogue().load()
    compiled: list[str] = []
    real = ImmutableSandboxedEnvironment.compile

    def counting(self: ImmutableSandboxedEnvironment, source: object, *args: object, **kw: object) -> object:
        compiled.append(str(args[0] if args else kw.get("name")))
        return real(self, source, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(ImmutableSandboxedEnvironment, "compile", counting)
    entry = catalogue.entry("referrer_acknowledgement")
    assert catalogue.subject_template(entry) is catalogue.subject_template(entry)
    name = "letters/referrer_acknowledgement.html.j2"
    assert catalogue.template("html", name) is catalogue.template("html", name)
    assert compiled == []
