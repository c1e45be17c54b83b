"""Will the recipient's name and address show through the envelope window?

The layout (``layouts/letter.html.j2``) prints the address block 12pt DejaVu Sans at 1.3 line
height in a box 90mm wide and 40mm deep, where a DL window envelope shows it. That box holds
seven lines, and a line of 38 characters of ordinary text is about 86mm wide at 12pt. So an
address fits when, wrapped at word boundaries to 38 characters, it takes at most seven lines (a
family letter's "Private and confidential" line included). One that does not is held for a person
before it is printed: a postcode lost below the window is a letter that may go astray.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

WINDOW_LINES = 7
LINE_CHARS = 38
MARKING = "Private and confidential"  # printed above a family letter's address, in the window


def window_lines(recipient: Mapping[str, Any], *, marked: bool) -> list[str]:
    """The lines the window shows, as the layout prints them, before wrapping."""
    lines = [MARKING] if marked else []
    lines.append(str(recipient.get("name") or ""))
    organisation = recipient.get("organisation") or recipient.get("school")
    if organisation:
        lines.append(str(organisation))
    lines += [str(line) for line in recipient.get("address_lines") or ()]
    return [line for line in lines if line.strip()]


def misfit(lines: Sequence[str]) -> str | None:
    """Why ``lines`` will not fit the window, or None when they fit."""
    for line in lines:
        longest = max((len(word) for word in line.split()), default=0)
        if longest > LINE_CHARS:
            return (
                f"a word of {longest} characters is wider than the envelope window "
                f"(at most {LINE_CHARS} on a line)"
            )
    wrapped = sum(len(textwrap.wrap(line, LINE_CHARS)) for line in lines)
    if wrapped > WINDOW_LINES:
        return (
            f"the name and address take {wrapped} lines of at most {LINE_CHARS} characters; "
            f"the envelope window shows {WINDOW_LINES}"
        )
    return None
