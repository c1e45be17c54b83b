"""From a letter's outbox row to what its channel sends: an email, or a posted letter with its PDF.

The last check before anything goes happens here: on a case that now needs review (domestic
abuse, a confidential address) an unapproved letter is held, not sent. An email goes to the
recipient's address as the case holds it now; a posted letter whose address will not show
through the envelope window is held. The letter's date and the email's Date header come from one
reading of the runtime's clock.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from letters.envelope import misfit, window_lines
from letters.letters_renderer import LetterOrder, LetterRenderer
from letters.rendering import RenderError
from messaging.email import OUTBOX_ID_HEADER, REFERENCE_HEADER, OutgoingEmail
from messaging.letter import OutgoingLetter
from messaging.outbox import OutboxMessage
from workflow import episodes
from workflow.duties import hold_reasons
from workflow.model import Case


def order_of(row: OutboxMessage) -> LetterOrder:
    return LetterOrder(
        id=row.id,
        kind=row.kind,
        case_id=row.case_id,
        recipient_role=row.recipient_role,
        recipient=row.recipient,
        medium=str(row.payload.get("medium") or "post"),
        episode=_int_or_none(row.payload.get("episode")),
    )


def _int_or_none(value: object) -> int | None:
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else None


class LetterComposer:
    """Builds the outgoing email or letter for a letter's row (a renderer for the relay)."""

    def __init__(self, letters: LetterRenderer) -> None:
        self.letters = letters

    def __call__(self, session: Session, row: OutboxMessage) -> OutgoingEmail | OutgoingLetter:
        case = session.get(Case, row.case_id) if row.case_id is not None else None
        if case is not None and not row.payload.get("approved_by"):
            # The risks of the letter's own episode and of the case as it is now both count.
            earlier = episodes.as_of(session, case, order_of(row).episode)
            reasons = list(dict.fromkeys([*hold_reasons(case), *hold_reasons(earlier)]))
            if reasons:
                raise RenderError(f"outbox {row.id}: held for review: {'; '.join(reasons)}")
        order, now = order_of(row), self.letters.clock()
        if order.medium == "email":
            to = self.letters.email_address(session, order)
            rendered, _ = self.letters.render(session, order, now)
            return OutgoingEmail(
                to=to,
                subject=rendered.subject,
                text=rendered.text,
                html=rendered.html,
                message_id=f"<letter.{row.id}@caseloop>",
                headers={OUTBOX_ID_HEADER: str(row.id), REFERENCE_HEADER: row.idempotency_key},
                template_version=rendered.version,
                date=now,
            )
        rendered, view = self.letters.render(session, order, now)
        recipient = view["recipient"]
        lines = tuple(recipient.get("address_lines") or ())
        if not lines:
            raise RenderError(f"outbox {row.id}: a posted letter needs an address")
        problem = misfit(window_lines(recipient, marked=row.recipient_role == "family"))
        if problem:
            raise RenderError(f"outbox {row.id}: the address will not fit the envelope window: {problem}")
        return OutgoingLetter(
            key=str(row.id),
            reference=row.idempotency_key,
            recipient_name=str(recipient.get("name") or ""),
            address_lines=lines,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            pdf=self.letters.pdf(rendered),
            template_version=rendered.version,
        )
