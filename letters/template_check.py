"""What a template uses, read from its syntax tree before it ever renders.

StrictUndefined catches a missing value only on the path that runs, and not at all for a macro
argument that is left out and then tested or defaulted; so every template is read whole when it
is loaded. For one parsed template this module finds:

- every field it reads: a free name with its attribute or constant-key chain (``recipient.name``,
  ``council["email"]``), ignoring loop variables, macro parameters and names set inside it;
- every attribute or key starting with ``_`` (the door to Python internals);
- every template it extends, includes or imports (a computed template name cannot be checked);
- the macros it defines and every call to a macro, so a call leaving out an argument without a
  default is found.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from jinja2 import nodes

# Names Jinja itself provides that a letter may use; everything else free is a field.
BUILTIN_NAMES = frozenset({"range", "namespace", "self", "super"})


@dataclass(frozen=True)
class Use:
    """A field chain read by a template, e.g. ``("recipient", "name")``."""

    chain: tuple[str, ...]
    lineno: int

    @property
    def path(self) -> str:
        return ".".join(self.chain)


@dataclass(frozen=True)
class MacroCall:
    """A call to a macro: ``via`` is the import alias (``m`` in ``m.block()``), or None if local."""

    via: str | None
    name: str
    positional: int
    keywords: frozenset[str]
    open_ended: bool  # *args or **kwargs at the call: the arguments cannot be counted
    lineno: int


@dataclass
class Findings:
    uses: list[Use] = field(default_factory=list)
    private: list[tuple[str, int]] = field(default_factory=list)
    references: list[tuple[str | None, int]] = field(default_factory=list)  # None: computed name
    imports: dict[str, str] = field(default_factory=dict)  # alias -> template
    from_imports: dict[str, tuple[str, str]] = field(default_factory=dict)  # alias -> (template, macro)
    macros: dict[str, tuple[tuple[str, ...], int]] = field(default_factory=dict)  # name -> (args, defaults)
    calls: list[MacroCall] = field(default_factory=list)


def analyse(template: nodes.Template) -> Findings:
    """Everything :mod:`letters.template_check` looks for in one parsed template."""
    found = Findings()
    _Walker(found).body(template.body, frozenset())
    return found


def macro_call_problems(name: str, findings: dict[str, Findings]) -> list[tuple[str, str | None]]:
    """Calls in template ``name`` to a macro that does not exist or without an argument it needs.

    ``findings`` holds every template ``name`` uses; each problem is (message, argument).
    """
    found = findings[name]
    problems: list[tuple[str, str | None]] = []
    for call in found.calls:
        if call.via is not None:
            source, macro = found.imports.get(call.via), call.name
            if source is None:
                continue  # a method on a value (loop.cycle, text.upper), not a macro
        elif call.name in found.macros:
            source, macro = name, call.name
        elif call.name in found.from_imports:
            source, macro = found.from_imports[call.name]
        else:
            continue  # caller(), range(), super(): not a macro of ours
        if source not in findings:
            continue  # missing or unparsable: reported already
        label = f"{call.via}.{macro}" if call.via else call.name
        signature = findings[source].macros.get(macro)
        if signature is None:
            problems.append((f"line {call.lineno}: macro {label} is not defined", None))
        elif not call.open_ended:
            args, defaults = signature
            for arg in args[: len(args) - defaults][call.positional :]:
                if arg not in call.keywords:
                    message = f"line {call.lineno}: macro {label} is called without argument {arg}"
                    problems.append((message, arg))
    return problems


def _store_names(target: nodes.Node) -> Iterator[str]:
    if isinstance(target, nodes.Name):
        yield target.name
    elif isinstance(target, nodes.Tuple):
        for item in target.items:
            yield from _store_names(item)


def _bound_by(body: Iterable[nodes.Node]) -> set[str]:
    """Names a run of statements binds in its own scope (``if`` opens no new scope in Jinja)."""
    names: set[str] = set()
    for stmt in body:
        if isinstance(stmt, nodes.Assign | nodes.AssignBlock):
            names.update(_store_names(stmt.target))
        elif isinstance(stmt, nodes.Macro):
            names.add(stmt.name)
        elif isinstance(stmt, nodes.Import):
            names.add(stmt.target)
        elif isinstance(stmt, nodes.FromImport):
            names.update(alias if isinstance(alias, str) else alias[1] for alias in stmt.names)
        elif isinstance(stmt, nodes.If):
            names |= _bound_by([*stmt.body, *stmt.elif_, *stmt.else_])
    return names


def _chain(node: nodes.Node) -> tuple[str, ...] | None:
    """``a.b["c"]`` as ``("a", "b", "c")``; None when the base is not a plain name."""
    parts: list[str] = []
    while True:
        if isinstance(node, nodes.Getattr):
            parts.append(node.attr)
            node = node.node
        elif (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
        ):
            parts.append(node.arg.value)
            node = node.node
        elif isinstance(node, nodes.Name):
            parts.append(node.name)
            return tuple(reversed(parts))
        else:
            return None


class _Walker:
    def __init__(self, found: Findings) -> None:
        self.found = found

    def body(self, body: Iterable[nodes.Node], bound: frozenset[str]) -> None:
        body = list(body)
        inner = bound | _bound_by(body)
        for node in body:
            self.visit(node, inner)

    def visit(self, node: nodes.Node, bound: frozenset[str]) -> None:
        handler = getattr(self, f"_{type(node).__name__}", None)
        if handler is not None:
            handler(node, bound)
        else:
            for child in node.iter_child_nodes():
                self.visit(child, bound)

    # Expressions

    def _Name(self, node: nodes.Name, bound: frozenset[str]) -> None:
        if node.ctx == "load" and node.name not in bound and node.name not in BUILTIN_NAMES:
            self.found.uses.append(Use((node.name,), node.lineno))

    def _access(self, node: nodes.Getattr | nodes.Getitem, bound: frozenset[str]) -> None:
        key = node.attr if isinstance(node, nodes.Getattr) else None
        if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            key = node.arg.value if isinstance(node.arg.value, str) else None
        if key is not None and key.startswith("_"):
            self.found.private.append((key, node.lineno))
        chain = _chain(node)
        if chain is not None:
            if chain[0] not in bound and chain[0] not in BUILTIN_NAMES:
                self.found.uses.append(Use(chain, node.lineno))
            return
        self.visit(node.node, bound)
        if isinstance(node, nodes.Getitem):
            self.visit(node.arg, bound)

    _Getattr = _access
    _Getitem = _access

    def _Call(self, node: nodes.Call, bound: frozenset[str]) -> None:
        target = node.node
        via: str | None = None
        name: str | None = None
        if isinstance(target, nodes.Name):
            name = target.name
        elif isinstance(target, nodes.Getattr) and isinstance(target.node, nodes.Name):
            via, name = target.node.name, target.attr
        if name is not None:
            self.found.calls.append(
                MacroCall(
                    via=via,
                    name=name,
                    positional=len(node.args),
                    keywords=frozenset(kw.key for kw in node.kwargs),
                    open_ended=node.dyn_args is not None or node.dyn_kwargs is not None,
                    lineno=node.lineno,
                )
            )
        for child in node.iter_child_nodes():
            self.visit(child, bound)

    # Statements that open a scope or bind names

    def _For(self, node: nodes.For, bound: frozenset[str]) -> None:
        self.visit(node.iter, bound)
        inner = bound | set(_store_names(node.target)) | {"loop"}
        if node.test is not None:
            self.visit(node.test, inner)
        self.body(node.body, inner)
        self.body(node.else_, bound)

    def _Macro(self, node: nodes.Macro, bound: frozenset[str]) -> None:
        args = tuple(arg.name for arg in node.args)
        self.found.macros[node.name] = (args, len(node.defaults))
        for default in node.defaults:
            self.visit(default, bound)
        self.body(node.body, bound | set(args) | {"caller", "varargs", "kwargs"})

    def _CallBlock(self, node: nodes.CallBlock, bound: frozenset[str]) -> None:
        self.visit(node.call, bound)
        args = {arg.name for arg in node.args}
        for default in node.defaults:
            self.visit(default, bound)
        self.body(node.body, bound | args | {"caller", "varargs", "kwargs"})

    def _With(self, node: nodes.With, bound: frozenset[str]) -> None:
        for value in node.values:
            self.visit(value, bound)
        targets = {name for target in node.targets for name in _store_names(target)}
        self.body(node.body, bound | targets)

    def _If(self, node: nodes.If, bound: frozenset[str]) -> None:
        self.visit(node.test, bound)
        for stmt in [*node.body, *node.elif_, *node.else_]:
            self.visit(stmt, bound)

    def _Block(self, node: nodes.Block, bound: frozenset[str]) -> None:
        self.body(node.body, bound)

    def _AssignBlock(self, node: nodes.AssignBlock, bound: frozenset[str]) -> None:
        if node.filter is not None:
            self.visit(node.filter, bound)
        self.body(node.body, bound)

    def _NSRef(self, node: nodes.NSRef, bound: frozenset[str]) -> None:
        if node.name not in bound:
            self.found.uses.append(Use((node.name,), node.lineno))
        if node.attr.startswith("_"):
            self.found.private.append((node.attr, node.lineno))

    # References to other templates

    def _reference(self, template: nodes.Expr) -> str | None:
        if isinstance(template, nodes.Const) and isinstance(template.value, str):
            self.found.references.append((template.value, template.lineno))
            return template.value
        self.found.references.append((None, template.lineno))
        return None

    def _Extends(self, node: nodes.Extends, bound: frozenset[str]) -> None:
        self._reference(node.template)

    def _Include(self, node: nodes.Include, bound: frozenset[str]) -> None:
        self._reference(node.template)

    def _Import(self, node: nodes.Import, bound: frozenset[str]) -> None:
        name = self._reference(node.template)
        if name is not None:
            self.found.imports[node.target] = name

    def _FromImport(self, node: nodes.FromImport, bound: frozenset[str]) -> None:
        name = self._reference(node.template)
        for item in node.names:
            macro, alias = (item, item) if isinstance(item, str) else item
            if name is not None:
                self.found.from_imports[alias] = (name, macro)
