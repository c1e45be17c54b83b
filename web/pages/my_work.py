"""My work (``GET /my-work``): a member of staff's own deadlines, reminders, held letters and
duties to do by hand, and the two things they do from it: acknowledge a reminder
(``POST /reminders/{id}/acknowledge``) and record a duty done by hand
(``POST /cases/{ref}/duties/{duty}/done``).

Each section pages on its own query parameter (``overdue_page``, ``soon_page`` …), so moving
through one list keeps the others where they were. The daily reminder digest links here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from services import access, casework, my_work, queries
from services.paging import Slice
from web.pages.display import long_date, working_days
from web.pages.rendering import Paging, notice, redirect, render, runtime, signed_in
from workflow.errors import NotFound
from workflow.events import HOW_DONE

router = APIRouter(include_in_schema=False)

SECTION_SIZE = 20  # rows of each section on one page: five sections make one long page otherwise
SECTIONS = ("overdue", "soon", "reminders", "letters", "duties")
# A reminder's step, as the digest that carried it put it.
STEP_WORDS = {
    "warning": "Due soon",
    "due": "Due today",
    "breach": "Overdue",
    "escalation": "Escalated to you",
    "repeat": "Still overdue",
}
HOW_WORDS = {"phone": "By phone", "meeting": "In a meeting", "letter": "By a letter sent another way"}

ACKNOWLEDGED = notice(
    "reminder-acknowledged", "Reminder acknowledged: no more repeats about it until it escalates."
)
DUTY_DONE = notice("duty-done", "Duty recorded as done: its deadline has stopped.")
DUTY_ALREADY = notice("duty-already-done", "That duty was already recorded as done.")

Signed = Annotated[access.SignedIn, Depends(signed_in)]


@dataclass(frozen=True)
class Section:
    """One section's page of rows and the links to its neighbours."""

    slice: Slice[Any]
    paging: Paging
    previous: str | None
    next: str | None


def _number(request: Request, section: str) -> int:
    raw = request.query_params.get(f"{section}_page", "1")
    return int(raw) if raw.isdigit() and 0 < int(raw) < 1_000_000 else 1


def _link(request: Request, section: str, number: int) -> str:
    name = f"{section}_page"
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in (name, "done")]
    params.append((name, str(number)))
    return f"/my-work?{urlencode(params)}#{section}"


def _section(request: Request, name: str, fetch: Any) -> Section:
    number = _number(request, name)
    found: Slice[Any] = fetch((number - 1) * SECTION_SIZE, SECTION_SIZE)
    paging = Paging(number, SECTION_SIZE, found.total)
    previous = _link(request, name, number - 1) if number > 1 else None
    following = _link(request, name, number + 1) if number < paging.pages else None
    return Section(found, paging, previous, following)


def _page(
    request: Request, signed: access.SignedIn, status: int = 200, duty_error: dict[str, str] | None = None
) -> Response:
    rt, actor = runtime(request), signed.actor
    sections = {
        "overdue": _section(request, "overdue", lambda o, n: my_work.overdue(rt, actor, o, n)),
        "soon": _section(request, "soon", lambda o, n: my_work.due_soon(rt, actor, o, n)),
        "reminders": _section(request, "reminders", lambda o, n: my_work.reminders(rt, actor, o, n)),
        "letters": _section(request, "letters", lambda o, n: my_work.held_letters(rt, actor, o, n)),
        "duties": _section(request, "duties", lambda o, n: my_work.hand_duties(rt, actor, o, n)),
    }
    errors = []
    if duty_error is not None:
        shown = [(d.case, d.duty) for d in sections["duties"].slice.items]
        key = (duty_error["case"], duty_error["duty"])
        anchor = f"#how-{shown.index(key) + 1}" if key in shown else "#duties"
        errors.append({"text": duty_error["text"], "href": anchor})
    context = {
        "sections": sections,
        "how_done": [{"value": h, "text": HOW_WORDS.get(h, h.capitalize())} for h in HOW_DONE],
        "duty_error": duty_error,
        "errors": errors,
        "long_date": long_date,
        "working_days": working_days,
        "soon_days": my_work.SOON_WORKING_DAYS,
        "step_words": STEP_WORDS,
    }
    return render(request, "pages/my_work.html", context, status)


@router.get("/my-work")
def my_work_page(request: Request, signed: Signed) -> Response:
    return _page(request, signed)


@router.post("/reminders/{reminder_id}/acknowledge")
def acknowledge(request: Request, reminder_id: int, signed: Signed) -> Response:
    # Someone else's reminder is refused by the service (403, naming whose it is); one that does
    # not exist is 404: both become error pages.
    casework.acknowledge_reminder(runtime(request), signed.actor, reminder_id, None)
    return redirect("/my-work", done=ACKNOWLEDGED)


@router.post("/cases/{ref:path}/duties/{duty}/done")
def duty_done(
    request: Request,
    ref: str,
    duty: str,
    signed: Signed,
    how: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    rt = runtime(request)
    # A case the actor may not see is not found (404), exactly as one that does not exist.
    if "\x00" in ref or not queries.case_exists(rt, signed.actor, ref):
        raise NotFound(f"no case {ref!r}")  # the words of a case that does not exist
    if how not in HOW_DONE:
        why = "Select how you did it" if not how else f"{how!r} is not a way a duty can be done"
        error = {"case": ref, "duty": duty, "text": f"{why} (case {ref}, {duty.replace('_', ' ')})."}
        return _page(request, signed, 422, error)
    recorded = casework.record_duty_done(rt, signed.actor, ref, duty, how=how)
    return redirect("/my-work", done=DUTY_DONE if recorded else DUTY_ALREADY)
