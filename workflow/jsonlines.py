"""Reading one line of JSON Lines strictly: whatever the line holds, a clear refusal, never a crash.

A line is decoded on its own (a byte that is not UTF-8 spoils its line, not the file), may not
be longer than :data:`limits.LINE_BYTES`, and may hold no raw control character. Its JSON may
not repeat a key in one object (which value would count?), nest deeper than
:data:`limits.NESTING`, or hold a number longer than :data:`limits.DIGITS` digits, NaN or
Infinity: Python's own decoder would take the last duplicate silently, recurse until it fails, or
spend seconds on a number it then refuses with an error of another type.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import IO, Any

from workflow import limits
from workflow.errors import MalformedEvent

LINE = "(line)"
BOM = "\ufeff"
KEPT_OF_A_LONG_LINE = 4096  # characters of an over-long line kept to show what it was

# What JSON text itself may not hold raw (tab is JSON whitespace), and what the database cannot
# store (NUL, unpaired surrogates): shown as escapes in the kept copy of a rejected line.
_RAW_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff]")
# A ``\\u`` escape of a surrogate, which decodes to one unless its pair follows.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def read_lines(stream: IO[bytes], limit: int = limits.LINE_BYTES) -> Iterator[bytes]:
    """The stream's lines as bytes, each cut short after ``limit + 1`` bytes (the rest of an
    over-long line is read past, so one huge line costs no memory and still counts as one line)."""
    while line := stream.readline(limit + 1):
        if len(line) > limit and not line.endswith(b"\n"):
            while (rest := stream.readline(64 * 1024)) and not rest.endswith(b"\n"):
                pass
        yield line


def decode(raw: bytes | str, *, first: bool) -> tuple[str, MalformedEvent | None]:
    """The line as text without its line ending (and, on the first line, without a byte-order
    mark), and the refusal of a line that is not UTF-8 or is too long (the text is still kept)."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            text = raw.decode("utf-8", "backslashreplace").rstrip("\r\n")
            bad = raw[exc.start : exc.start + 1].hex().upper()
            return text, MalformedEvent(LINE, f"is not UTF-8 text (byte 0x{bad} at byte {exc.start + 1})")
    else:
        text = raw
    if first:
        text = text.removeprefix(BOM)
    text = text.rstrip("\r\n")
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limits.LINE_BYTES:
        kept = text[:KEPT_OF_A_LONG_LINE]
        return kept, MalformedEvent(
            LINE, f"is longer than {limits.LINE_BYTES} bytes (only its first {len(kept)} characters are kept)"
        )
    return text, None


def showable(text: str) -> str:
    """``text`` safe to store and show: raw control characters and unpaired surrogates escaped."""
    return _RAW_CONTROL.sub(lambda m: m.group().encode("unicode_escape", "backslashreplace").decode(), text)


def parse_object(raw: str) -> dict[str, Any]:
    """Decode one line (its line ending aside) into a JSON object, or raise
    :class:`MalformedEvent` saying why not."""
    raw = raw.rstrip("\r\n")
    found = _RAW_CONTROL.search(raw)
    if found:
        raise MalformedEvent(
            LINE, f"has the raw control character U+{ord(found.group()):04X} at column {found.start() + 1}"
        )
    try:
        data = json.loads(
            raw,
            object_pairs_hook=_object,
            parse_int=_integer,
            parse_float=_decimal,
            parse_constant=_constant,
        )
    except json.JSONDecodeError as exc:
        raise MalformedEvent(LINE, f"not valid JSON ({exc.msg} at column {exc.colno})") from exc
    except RecursionError as exc:
        raise _too_deep() from exc
    if not isinstance(data, dict):
        raise MalformedEvent(LINE, "an event must be a JSON object")
    if raw.count("{") + raw.count("[") > limits.NESTING or _SURROGATE_ESCAPE.search(raw):
        # Only then can the value be too deep (each level opens a bracket) or hold an unpaired
        # surrogate (a raw one was refused above: only an escape makes one): most lines need no walk.
        _check_depth(data)
    return data


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise MalformedEvent(LINE, f"the key {quoted(key)} appears twice in one object")
        found[key] = value
    return found


def _integer(digits: str) -> int:
    if len(digits.lstrip("-")) > limits.DIGITS:
        raise MalformedEvent(LINE, f"a number has more than {limits.DIGITS} digits")
    return int(digits)


def _decimal(text: str) -> float:
    if len(text) > limits.DIGITS + 8:  # room for a sign, a point and an exponent
        raise MalformedEvent(LINE, f"a number has more than {limits.DIGITS} digits")
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise MalformedEvent(LINE, f"the number {text} is too large")
    return value


def _constant(name: str) -> float:
    raise MalformedEvent(LINE, f"{name} is not a JSON number")


def _too_deep() -> MalformedEvent:
    return MalformedEvent(LINE, f"objects and arrays are nested more than {limits.NESTING} deep")


def _check_depth(data: object) -> None:
    """Refuse nesting deeper than the limit, and strings the database could not store."""
    stack: list[tuple[object, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > limits.NESTING:
                raise _too_deep()
            items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
            stack.extend((item, depth + 1) for item in items)
        elif isinstance(value, str) and re.search("[\ud800-\udfff]", value):
            raise MalformedEvent(LINE, "a string has an unpaired surrogate escape (\\ud800–\\udfff)")


def quoted(value: object, limit: int = 40) -> str:
    """A value as a short, escaped quotation for a reason (a reason never repeats a long input)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}…"
