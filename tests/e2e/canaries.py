"""Canary values: plant them in every personal field, then look for them anywhere, decoded or not."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from typing import Any

from tests.e2e.engine import overdue_referral
from tests.factories import person

_BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")


def _unescape_monitor(text: str) -> str:
    """redis-cli prints arguments as C-style quoted strings; undo the escapes it uses."""

    def one(m: re.Match[str]) -> str:
        code = m.group(1)
        if code.startswith("x"):
            return chr(int(code[1:], 16))
        return {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}.get(code, code)

    return re.sub(r"\\(x[0-9a-fA-F]{2}|.)", one, text)


def readable_forms(text: str, depth: int = 3) -> str:
    """``text`` plus everything base64 inside it decodes to (kombu base64-encodes message bodies)."""
    found = [text]
    frontier = [_unescape_monitor(text)]
    found.extend(frontier)
    for _ in range(depth):
        decoded = []
        for chunk in frontier:
            for run in _BASE64_RUN.findall(chunk):
                padded = run + "=" * (-len(run) % 4)
                try:
                    raw = base64.b64decode(padded, validate=True)
                except (binascii.Error, ValueError):
                    continue
                decoded.append(raw.decode("utf-8", errors="ignore"))
        if not decoded:
            break
        found.extend(decoded)
        frontier = decoded
    return "\n".join(found)


def canaries_in(text: str, canaries: Iterable[str]) -> list[str]:
    """The canaries found in ``text`` or in anything base64 within it, case-insensitively."""
    haystack = readable_forms(text).lower()
    return [c for c in canaries if c.lower() in haystack]


def canary_referral(case: str, canaries: dict[str, str]) -> list[dict[str, Any]]:
    """An overdue referral whose every name, address and contact detail is a canary.

    Its referrer (a school) has an email address, so the referral owes an acknowledgement letter:
    letters are in play alongside the staff digests, and canaries must not leak through them either.
    """
    c = canaries
    household = [
        person("P1", name=c["mother"], address=c["address1"], email=c["email"], preferred_channel="post"),
        person("P2", name=c["father"], address=c["address2"], relationship="father"),
    ]
    return overdue_referral(
        case,
        child={
            "name": c["child"],
            "dob": "2016-05-01",
            "school": {"name": c["school"], "dsl_name": c["dsl"], "email": c["school_email"]},
        },
        referrer={
            "source": "2A",
            "organisation": c["organisation"],
            "name": c["referrer"],
            "email": c["referrer_email"],
            "address": c["referrer_address"],
        },
        household=household,
    )
