"""Rendering a letter's outbox row: its recipient's view-model, then text, HTML and the PDF.

The view-model is built afresh from the case when the letter is rendered (the latest address
wins, and so does the latest email address: :meth:`LetterRenderer.email_address`), and only for
the row's audience (:mod:`letters.views`). Rendering never writes: the template version travels
with what was rendered, and the relay records it with the attempt.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from letters.catalogue import Catalogue, RenderedLetter
from letters.council import Council
from letters.pdf import render_pdf
from letters.rendering import RenderError
from letters.views import family_view, referrer_view, school_view
from workflow import episodes
from workflow.clocks import Rulebook
from workflow.duties import school_contact
from workflow.model import Case
from workflow.staff import Staff
from workflow.timeutil import Clock


@dataclass(frozen=True)
class LetterOrder:
    """Which letter to render for whom: the parts of an outbox row that rendering reads."""

    id: int
    kind: str  # the template key
    case_id: int | None
    recipient_role: str  # family | referrer | school
    recipient: str  # a household member's id, "referrer" or "school"
    medium: str  # email | post
    episode: int | None = None  # the episode whose duty made it owed (None: the case's current one)


class LetterRenderer:
    def __init__(
        self, catalogue: Catalogue, council: Council, book: Rulebook, pdf_cache: Path, clock: Clock
    ) -> None:
        self.catalogue, self.council, self.book = catalogue, council, book
        self.pdf_cache, self.clock = pdf_cache, clock

    def view(self, session: Session, row: LetterOrder, now: datetime | None = None) -> dict[str, Any]:
        """The view-model for ``row``'s recipient: all its template may see. ``now`` dates the
        letter (the runtime's clock by default)."""
        view = self._view(session, row, now or self.clock())
        if row.medium == "email":
            view["council"]["logo"] = ""  # an email cannot show a file from the council's server
        return view

    @staticmethod
    def _case(session: Session, row: LetterOrder) -> tuple[Case, Case]:
        """The case as it is now, and as it stood in the episode that made the letter owed: a
        re-referral never changes what an earlier episode's letter says, nor whom it is to."""
        live = session.get(Case, row.case_id) if row.case_id is not None else None
        if live is None:
            raise RenderError(f"outbox {row.id}: the letter has no case")
        return live, episodes.as_of(session, live, row.episode)

    @staticmethod
    def _person(live: Case, case: Case, row: LetterOrder) -> dict[str, Any]:
        """The household member a family letter is for, if they may still be written to: as they
        stand now while still in the household (the latest address, and whether it is still
        safe), else as they were in the letter's episode."""
        person = next((p for p in live.household if str(p["id"]) == row.recipient), None)
        if person is None:
            person = next((p for p in case.household if str(p["id"]) == row.recipient), None)
        if person is None:
            raise RenderError(f"outbox {row.id}: {row.recipient} is no longer in the household")
        if not person.get("safe_to_contact"):
            raise RenderError(f"outbox {row.id}: {row.recipient} is now marked not safe to contact")
        return person

    def _view(self, session: Session, row: LetterOrder, now: datetime) -> dict[str, Any]:
        live, case = self._case(session, row)
        today = self.book.local_date(now)
        worker = session.get(Staff, case.worker) if case.worker else None
        # A worker who has left is nobody's contact: the letter names the team instead.
        worker_name = worker.name if worker is not None and worker.present_on(today) else None
        if row.recipient_role == "family":
            person = self._person(live, case, row)
            return family_view(case, person, self.council, today, worker_name, self.book.zone)
        if row.recipient_role == "referrer":
            return referrer_view(case, self.council, today, self.book.zone)
        if row.recipient_role == "school":
            return school_view(case, self.council, today, worker_name)
        raise RenderError(f"outbox {row.id}: no letters for recipient role {row.recipient_role!r}")

    def email_address(self, session: Session, row: LetterOrder) -> str:
        """Where an emailed letter goes: the recipient's email as the case holds it now, as a
        posted letter goes to the address held now. One who has lost theirs is not written to.
        An earlier episode's referrer or school is the one that episode held."""
        live, case = self._case(session, row)
        if row.recipient_role == "family":
            person = self._person(live, case, row)
            email, who = person.get("email"), f"household member {row.recipient}"
        elif row.recipient_role == "referrer":
            email, who = case.referrer.get("email"), "the referrer"
        elif row.recipient_role == "school":
            email, who = (school_contact(case) or {}).get("email"), "the school's safeguarding lead"
        else:
            raise RenderError(f"outbox {row.id}: no letters for recipient role {row.recipient_role!r}")
        if not email:
            raise RenderError(f"outbox {row.id}: {who} no longer has an email address")
        return str(email)

    def render(
        self, session: Session, row: LetterOrder, now: datetime | None = None
    ) -> tuple[RenderedLetter, dict[str, Any]]:
        view = self.view(session, row, now)
        return self.catalogue.render(row.kind, view), view

    def pdf(self, rendered: RenderedLetter) -> bytes:
        assets = Path(self.council.logo).resolve().parent if self.council.logo else None
        return render_pdf(rendered.html, self.pdf_cache, assets=assets)
