"""Turning a letter's outbox row into what its channel sends: an email, or a posted PDF.

The view-model is built afresh from the case when the letter is rendered (the latest address
wins), and only for the row's audience (:mod:`letters.views`). The template key, its version and
the content hash are recorded on the row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from letters.catalogue import Catalogue, RenderedLetter
from letters.council import Council
from letters.email import OUTBOX_ID_HEADER, REFERENCE_HEADER, OutgoingEmail
from letters.letter import OutgoingLetter
from letters.pdf import render_pdf
from letters.rendering import RenderError
from letters.views import family_view, referrer_view, school_view
from workflow.clocks import Rulebook
from workflow.duties import hold_reasons
from workflow.model import Case
from workflow.outbox import OutboxMessage
from workflow.staff import Staff
from workflow.timeutil import Clock


class LetterRenderer:
    def __init__(
        self, catalogue: Catalogue, council: Council, book: Rulebook, pdf_cache: Path, clock: Clock
    ) -> None:
        self.catalogue, self.council, self.book = catalogue, council, book
        self.pdf_cache, self.clock = pdf_cache, clock

    def view(self, session: Session, row: OutboxMessage) -> dict[str, Any]:
        """The view-model for ``row``'s recipient: all its template may see."""
        view = self._view(session, row)
        if row.payload.get("medium") == "email":
            view["council"]["logo"] = ""  # an email cannot show a file from the council's server
        return view

    def _view(self, session: Session, row: OutboxMessage) -> dict[str, Any]:
        case = session.get(Case, row.case_id) if row.case_id is not None else None
        if case is None:
            raise RenderError(f"outbox {row.id}: the letter has no case")
        today = self.book.local_date(self.clock())
        worker = session.get(Staff, case.worker) if case.worker else None
        worker_name = worker.name if worker is not None else None
        if row.recipient_role == "family":
            person = next((p for p in case.household if str(p["id"]) == row.recipient), None)
            if person is None:
                raise RenderError(f"outbox {row.id}: {row.recipient} is no longer in the household")
            if not person.get("safe_to_contact"):
                raise RenderError(f"outbox {row.id}: {row.recipient} is now marked not safe to contact")
            return family_view(case, person, self.council, today, worker_name)
        if row.recipient_role == "referrer":
            return referrer_view(case, self.council, today)
        if row.recipient_role == "school":
            return school_view(case, self.council, today, worker_name)
        raise RenderError(f"outbox {row.id}: no letters for recipient role {row.recipient_role!r}")

    def render(self, session: Session, row: OutboxMessage) -> tuple[RenderedLetter, dict[str, Any]]:
        view = self.view(session, row)
        rendered = self.catalogue.render(row.kind, view)
        row.template_version = rendered.version
        return rendered, view

    def pdf(self, rendered: RenderedLetter) -> bytes:
        assets = Path(self.council.logo).resolve().parent if self.council.logo else None
        return render_pdf(rendered.html, self.pdf_cache, assets=assets)

    def __call__(self, session: Session, row: OutboxMessage) -> OutgoingEmail | OutgoingLetter:
        """The letter to send. A last check before anything goes: on a case that now needs review
        (domestic abuse, a confidential address), an unapproved letter is held, not sent."""
        case = session.get(Case, row.case_id) if row.case_id is not None else None
        if case is not None and not row.payload.get("approved_by"):
            reasons = hold_reasons(case)
            if reasons:
                raise RenderError(f"outbox {row.id}: held for review: {'; '.join(reasons)}")
        rendered, view = self.render(session, row)
        if row.payload.get("medium") == "email":
            return OutgoingEmail(
                to=row.address,
                subject=rendered.subject,
                text=rendered.text,
                html=rendered.html,
                message_id=f"<letter.{row.id}@caseloop>",
                headers={OUTBOX_ID_HEADER: str(row.id), REFERENCE_HEADER: row.idempotency_key},
            )
        recipient = view["recipient"]
        lines = tuple(recipient.get("address_lines") or ())
        if not lines:
            raise RenderError(f"outbox {row.id}: a posted letter needs an address")
        return OutgoingLetter(
            key=str(row.id),
            reference=row.idempotency_key,
            recipient_name=str(recipient.get("name") or ""),
            address_lines=lines,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            pdf=self.pdf(rendered),
        )
