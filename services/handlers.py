"""The bus's handler table: who acts on each domain event, inside the transaction that raised it.

Installed on every session of the runtime's database by the composition point.
"""

from __future__ import annotations

from functools import partial

from sqlalchemy.orm import Session

from messaging import owed
from messaging.digest import create_digests
from messaging.lifecycle import MessageFailed, MessageSent
from workflow import fulfilment
from workflow.bus import Handler
from workflow.clocks import Rulebook
from workflow.happened import DigestsOwed, DutyDoneByHand, LetterOwed, LettersWithdrawn, RiskCameToLight


def letter_sent(book: Rulebook, session: Session, sent: MessageSent) -> None:
    """When the last letter of a duty has gone, caseloop records the duty fulfilled."""
    message = sent.message
    if message.case_id is None or message.duty is None or message.source_event is None:
        return  # a staff digest
    if owed.duty_complete(session, message):
        fulfilment.duty_letters_sent(
            session, book, message.case_id, message.duty, message.source_event, sent.at
        )


def letter_failed(book: Rulebook, session: Session, failed: MessageFailed) -> None:
    """A letter failed for good or came back: the case's worker gets a task."""
    message = failed.message
    if message.case_id is None or message.duty is None:
        return
    fulfilment.letter_failed(session, book, message.case_id, message.id, message.duty, failed.at, failed.why)


def handlers(book: Rulebook) -> dict[type, list[Handler]]:
    return {
        LetterOwed: [owed.create_letter],
        RiskCameToLight: [owed.hold_waiting],
        DutyDoneByHand: [owed.cancel_unsent],
        LettersWithdrawn: [owed.withdraw_unsent],
        DigestsOwed: [create_digests],
        MessageSent: [partial(letter_sent, book)],
        MessageFailed: [partial(letter_failed, book)],
    }
