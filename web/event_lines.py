"""A request's events as the lines of a JSON Lines file, so they take the file's intake path.

The body is parsed keeping what the intake judges: every object's keys in order with any
duplicates, every number exactly as written (NaN and 40-digit numbers included). Each event is
then written out as one line, and the intake refuses a duplicate key, an over-long number or
deep nesting in the event that holds it, as it would on a line of a file: that event is
rejected and kept; the others are taken. Only a body that is not ``{"events": [objects…]}`` at
all is refused whole (422), and one too large to read (413).
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import HTTPException, Request

from web.schemas import MOST_EVENTS
from workflow.errors import Invalid

MOST_BYTES = 32 * 1024 * 1024  # 5,000 referrals of a few kilobytes each fit with room to spare
TOO_LARGE = (
    f"the request body is larger than {MOST_BYTES // (1024 * 1024)} MiB: "
    f"send at most {MOST_EVENTS:,} events, in several requests"
)


_SURROGATE = re.compile("[\ud800-\udfff]")


class _Number(str):
    """A number exactly as the request wrote it."""


class _Object(list[tuple[str, Any]]):
    """A JSON object's members in order, duplicates kept."""


async def event_lines(request: Request) -> list[str]:
    """The events of ``POST /api/events`` as JSON Lines, one per event, in the order sent."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MOST_BYTES:
        raise HTTPException(413, TOO_LARGE)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MOST_BYTES:
            raise HTTPException(413, TOO_LARGE)
    return lines_of(bytes(body))


def lines_of(body: bytes) -> list[str]:
    try:
        document = json.loads(
            body.decode("utf-8"),
            object_pairs_hook=_Object,
            parse_int=_Number,
            parse_float=_Number,
            parse_constant=_Number,
        )
        events = _events(document)
        return [_line(event) for event in events]
    except UnicodeDecodeError as exc:
        raise Invalid(f"the request body is not UTF-8 (byte {exc.start + 1})") from None
    except json.JSONDecodeError as exc:
        raise Invalid(
            f"the request body is not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise Invalid("the request body nests objects and arrays too deep") from None


def _events(document: object) -> list[_Object]:
    shape = 'the request body must be {"events": [ …event objects… ]}'
    if not isinstance(document, _Object):
        raise Invalid(shape)
    keys = [key for key, _ in document]
    if keys != ["events"]:
        other = sorted({k for k in keys if k != "events"})
        raise Invalid(
            f"{shape}; it has {', '.join(map(repr, other))}" if other else f"{shape}; it names events twice"
        )
    events = document[0][1]
    if isinstance(events, _Object) or not isinstance(events, list):
        raise Invalid(f"{shape}: events must be an array")
    if len(events) > MOST_EVENTS:
        raise Invalid(
            f"events: {len(events):,} events in one request; at most {MOST_EVENTS:,}: send the rest "
            "in further requests"
        )
    for position, event in enumerate(events):
        if not isinstance(event, _Object):
            raise Invalid(f"events[{position}]: each event must be a JSON object")
    return events


def _line(value: object) -> str:
    if isinstance(value, _Number):
        return str(value)
    if isinstance(value, str):
        # An unpaired surrogate stays escaped, as a file has to carry it.
        return json.dumps(value, ensure_ascii=bool(_SURROGATE.search(value)))
    if isinstance(value, _Object):
        return "{" + ", ".join(f"{_line(key)}: {_line(item)}" for key, item in value) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_line(item) for item in value) + "]"
    return json.dumps(value)  # true, false, null
