"""GOV.UK Notify channels (issue 4, part 6) through Notify's official client to a local Notify.

The fake server (tests/support/fake_notify.py) is a real HTTP server that checks the client's JWT,
stores what arrives and can answer with Notify's error bodies. Nothing here stubs the client.
"""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from io import BytesIO

import pytest
from pypdf import PdfReader
from sqlalchemy.orm import Session
from weasyprint import HTML

from config.wiring import Runtime
from messaging.channels import PermanentDeliveryError, RetryableDeliveryError
from messaging.channels.notify import (
    NotifyEmailChannel,
    NotifyLetterChannel,
    NotifyRateLimited,
    next_london_midnight,
)
from messaging.email import REFERENCE_HEADER, OutgoingEmail
from messaging.letter import OutgoingLetter
from messaging.outbox import OutboxMessage
from messaging.relay import Deliverer, RetryPolicy
from tests.factories import reconcile
from tests.support.fake_notify import DAILY_LIMIT, FakeNotify
from workflow.errors import CaseloopError
from workflow.timeutil import fixed_clock

TEMPLATE = "5a2f1c2e-7d7e-4c1b-9f38-0c6f3b7f4d11"
NOW = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
CANARY_ADDRESS = "canary.family@example.org"
CANARY_NAME = "Canary Zebedee Family"


@pytest.fixture
def notify() -> Iterator[FakeNotify]:
    with FakeNotify(email_templates=(TEMPLATE,)) as fake:
        yield fake


def email_channel(notify: FakeNotify) -> NotifyEmailChannel:
    return NotifyEmailChannel(notify.api_key, TEMPLATE, base_url=notify.base_url, timeout=5)


def letter_channel(notify: FakeNotify) -> NotifyLetterChannel:
    return NotifyLetterChannel(notify.api_key, base_url=notify.base_url, timeout=5)


def email(reference: str = "letter:case-1:closing:P1", to: str = CANARY_ADDRESS) -> OutgoingEmail:
    return OutgoingEmail(
        to=to,
        subject=f"Your case is closed, {CANARY_NAME}",
        text=f"Dear {CANARY_NAME},\n\nWe have closed your case.",
        html=f"<p>Dear {CANARY_NAME}</p>",
        message_id=f"<{reference.replace(':', '.')}@caseloop>",
        headers={REFERENCE_HEADER: reference},
    )


@cache
def pdf(text: str) -> bytes:
    return HTML(string=f"<h1>Letter</h1><p>{text}</p>").write_pdf()  # type: ignore[no-any-return]


def letter(
    key: str = "7", reference: str = "letter:case-1:closing:P2", postage: str = "first"
) -> OutgoingLetter:
    return OutgoingLetter(
        key=key,
        reference=reference,
        recipient_name=CANARY_NAME,
        address_lines=("1 Canary Row", "AB1 2CD"),
        subject="Closing letter",
        text="We have closed your case.",
        html="<p>closed</p>",
        pdf=pdf(f"Dear {CANARY_NAME}"),
        postage=postage,
    )


class Handovers:
    """An ``on_handover`` that records whether Notify already had anything when it was called."""

    def __init__(self, notify: FakeNotify) -> None:
        self.notify = notify
        self.seen: list[int] = []

    def __call__(self) -> None:
        self.seen.append(len(self.notify.notifications))


# -- sending -----------------------------------------------------------------------------------


def test_an_email_reaches_notify_with_its_template_reference_and_content(notify: FakeNotify) -> None:
    handovers = Handovers(notify)
    provider_ref = email_channel(notify).send(email(), handovers)
    [stored] = notify.of_type("email")
    assert provider_ref == stored.id
    assert (stored.email_address, stored.template_id, stored.reference) == (
        CANARY_ADDRESS,
        TEMPLATE,
        "letter:case-1:closing:P1",
    )
    assert stored.personalisation == {
        "subject": f"Your case is closed, {CANARY_NAME}",
        "body": f"Dear {CANARY_NAME},\n\nWe have closed your case.",
    }
    assert stored.subject == f"Your case is closed, {CANARY_NAME}"  # the template's ((subject)), filled
    assert handovers.seen == [0]  # handed over once, before Notify had it


def test_a_precompiled_letter_reaches_notify_as_the_same_pdf(notify: FakeNotify) -> None:
    handovers = Handovers(notify)
    item = letter()
    provider_ref = letter_channel(notify).send(item, handovers)
    [stored] = notify.of_type("letter")
    assert (provider_ref, stored.reference, stored.postage) == (stored.id, item.reference, "first")
    assert stored.pdf == item.pdf
    assert CANARY_NAME in PdfReader(BytesIO(stored.pdf)).pages[0].extract_text()
    assert handovers.seen == [0]


def test_an_email_without_its_reference_is_refused_before_anything_is_handed_over(notify: FakeNotify) -> None:
    handovers = Handovers(notify)
    bare = OutgoingEmail(to=CANARY_ADDRESS, subject="s", text="t", html="h", message_id="<m@caseloop>")
    with pytest.raises(PermanentDeliveryError, match=REFERENCE_HEADER):
        email_channel(notify).send(bare, handovers)
    assert (handovers.seen, notify.requests) == ([], [])


def test_each_channel_refuses_the_other_kind_before_handing_anything_over(notify: FakeNotify) -> None:
    handovers = Handovers(notify)
    with pytest.raises(PermanentDeliveryError, match="not posted letters"):
        email_channel(notify).send(letter(), handovers)
    with pytest.raises(PermanentDeliveryError, match="not emails"):
        letter_channel(notify).send(email(), handovers)
    assert (handovers.seen, notify.requests) == ([], [])


# -- errors, by status code --------------------------------------------------------------------


def test_400_is_permanent_and_nothing_is_looked_up_or_retried(notify: FakeNotify) -> None:
    notify.fail_next(400)
    with pytest.raises(PermanentDeliveryError) as caught:
        email_channel(notify).send(email(), Handovers(notify))
    assert caught.value.code == 400
    assert str(caught.value) == "Notify refused the message (400): BadRequestError: " + (
        "Can't send to this recipient using a team-only API key"
    )
    assert notify.requests == [("POST", "/v2/notifications/email", 400)]


def test_notify_validation_is_a_400_too(notify: FakeNotify) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        letter_channel(notify).send(letter(postage="carrier-pigeon"), Handovers(notify))
    assert caught.value.code == 400 and "postage invalid" in str(caught.value)
    assert notify.notifications == {}


def test_403_is_permanent_and_alerts_without_personal_data(
    notify: FakeNotify, caplog: pytest.LogCaptureFixture
) -> None:
    notify.fail_next(403)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(PermanentDeliveryError) as caught:
        email_channel(notify).send(email(), Handovers(notify))
    assert caught.value.code == 403
    alerts = [
        r for r in caplog.records if r.name == "messaging.channels.notify" and r.levelno == logging.ERROR
    ]
    assert len(alerts) == 1
    assert "403" in alerts[0].getMessage() and "letter:case-1:closing:P1" in alerts[0].getMessage()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (CANARY_ADDRESS, CANARY_NAME, "closed your case", notify.secret):
        assert secret not in logged


def test_429_rate_limit_is_retryable_with_the_usual_back_off(notify: FakeNotify) -> None:
    notify.fail_next(429)
    with pytest.raises(NotifyRateLimited) as caught:
        email_channel(notify).send(email(), Handovers(notify))
    assert isinstance(caught.value, RetryableDeliveryError)
    assert (caught.value.code, caught.value.not_before) == (429, None)
    assert notify.requests == [("POST", "/v2/notifications/email", 429)]


@pytest.mark.parametrize(
    ("now", "resume"),
    [
        (NOW, datetime(2026, 11, 4, 0, 0, tzinfo=UTC)),  # GMT
        (datetime(2026, 7, 1, 23, 30, tzinfo=UTC), datetime(2026, 7, 2, 23, 0, tzinfo=UTC)),  # 00:30 BST
        (datetime(2026, 10, 24, 22, 59, tzinfo=UTC), datetime(2026, 10, 24, 23, 0, tzinfo=UTC)),  # BST ends
        (datetime(2026, 3, 28, 23, 30, tzinfo=UTC), datetime(2026, 3, 29, 0, 0, tzinfo=UTC)),  # BST begins
    ],
)
def test_429_daily_limit_waits_until_midnight_in_london(
    notify: FakeNotify, now: datetime, resume: datetime
) -> None:
    notify.fail_next(429, error="TooManyRequestsError", message=DAILY_LIMIT)
    with pytest.raises(NotifyRateLimited) as caught:
        letter_channel_at(notify, now).send(letter(), Handovers(notify))
    assert (caught.value.code, caught.value.not_before) == (429, resume)
    assert next_london_midnight(now) == resume


def letter_channel_at(notify: FakeNotify, now: datetime) -> NotifyLetterChannel:
    return NotifyLetterChannel(notify.api_key, base_url=notify.base_url, timeout=5, clock=fixed_clock(now))


def test_next_london_midnight_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="naive"):
        next_london_midnight(datetime(2026, 1, 1))


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_is_retryable_after_checking_notify_does_not_have_it(notify: FakeNotify, status: int) -> None:
    notify.fail_next(status)
    with pytest.raises(RetryableDeliveryError) as caught:
        email_channel(notify).send(email(), Handovers(notify))
    assert not isinstance(caught.value, NotifyRateLimited)
    assert caught.value.code == status
    assert notify.requests == [("POST", "/v2/notifications/email", status), ("GET", "/v2/notifications", 200)]


def test_5xx_after_notify_stored_the_message_counts_as_sent_not_resent(notify: FakeNotify) -> None:
    notify.fail_next(500, after_storing=True)
    provider_ref = letter_channel(notify).send(letter(), Handovers(notify))
    [stored] = notify.of_type("letter")
    assert provider_ref == stored.id and notify.posts() == 1


def test_an_unreadable_answer_after_notify_stored_the_letter_counts_as_sent(notify: FakeNotify) -> None:
    notify.fail_next(201, after_storing=True, raw="<html>gateway says hello</html>")
    provider_ref = letter_channel(notify).send(letter(), Handovers(notify))
    [stored] = notify.of_type("letter")
    assert provider_ref == stored.id and notify.posts() == 1


def test_an_unreadable_answer_when_notify_has_nothing_is_retryable(notify: FakeNotify) -> None:
    notify.fail_next(502, raw="<html>Bad gateway</html>")
    with pytest.raises(RetryableDeliveryError) as caught:
        letter_channel(notify).send(letter(), Handovers(notify))
    assert caught.value.code == 502 and notify.notifications == {}


def test_5xx_when_the_lookup_fails_too_is_retryable(notify: FakeNotify) -> None:
    notify.fail_next(502, times=2)
    with pytest.raises(RetryableDeliveryError) as caught:
        email_channel(notify).send(email(), Handovers(notify))
    assert caught.value.code == 502


def test_an_unreachable_notify_is_retryable(notify: FakeNotify) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    channel = NotifyEmailChannel(notify.api_key, TEMPLATE, base_url=f"http://127.0.0.1:{port}", timeout=2)
    with pytest.raises(RetryableDeliveryError) as caught:
        channel.send(email(), Handovers(notify))
    assert caught.value.code is None and "could not be reached" in str(caught.value)
    assert channel.confirm(message("letter:case-1:closing:P1")) is None


def test_the_fake_checks_the_jwt_so_a_wrong_key_is_refused(notify: FakeNotify) -> None:
    wrong_secret = FakeNotify.key_for(notify.service_id, str(uuid.uuid4()))
    wrong_service = FakeNotify.key_for(str(uuid.uuid4()), notify.secret)
    for key in (wrong_secret, wrong_service):
        channel = NotifyEmailChannel(key, TEMPLATE, base_url=notify.base_url, timeout=5)
        with pytest.raises(PermanentDeliveryError) as caught:
            channel.send(email(), Handovers(notify))
        assert caught.value.code == 403
    assert notify.notifications == {}
    assert [status for _, _, status in notify.requests] == [403, 403]
    email_channel(notify).send(email(), Handovers(notify))  # the right key still works
    assert len(notify.notifications) == 1


def test_a_malformed_api_key_is_refused_without_echoing_it() -> None:
    with pytest.raises(CaseloopError) as caught:
        NotifyLetterChannel("not-a-key-hunter2")
    assert "hunter2" not in str(caught.value)


# -- confirming and following up ---------------------------------------------------------------


def message(key: str, outbox_id: int = 1) -> OutboxMessage:
    """An outbox row as the stale-send sweeper hands it to ``confirm`` (not stored)."""
    return OutboxMessage(id=outbox_id, idempotency_key=key)


def test_confirm_finds_a_message_by_its_idempotency_key(notify: FakeNotify) -> None:
    emails, letters = email_channel(notify), letter_channel(notify)
    assert emails.confirm(message("letter:case-1:closing:P1")) is False
    emails.send(email(), Handovers(notify))
    letters.send(letter(), Handovers(notify))
    assert emails.confirm(message("letter:case-1:closing:P1")) is True
    assert letters.confirm(message("letter:case-1:closing:P2")) is True
    assert emails.confirm(message("letter:case-1:closing:P2")) is False  # a letter is not an email
    assert emails.confirm(message("letter:case-2:closing:P1")) is False
    notify.fail_next(500)
    assert emails.confirm(message("letter:case-1:closing:P1")) is None  # Notify cannot say


def test_fetch_status_follows_notify(notify: FakeNotify) -> None:
    emails, letters = email_channel(notify), letter_channel(notify)
    email_id = emails.send(email(), Handovers(notify))
    letter_id = letters.send(letter(), Handovers(notify))

    def statuses() -> tuple[str, str]:
        return emails.fetch_status(email_id), letters.fetch_status(letter_id)

    assert statuses() == ("created", "pending-virus-check")
    notify.set_status(email_id, "delivered")
    notify.set_status(letter_id, "returned-letter")
    assert statuses() == ("delivered", "returned-letter")
    notify.set_status(email_id, "permanent-failure")
    assert emails.fetch_status(email_id) == "permanent-failure"
    with pytest.raises(PermanentDeliveryError) as caught:
        emails.fetch_status(str(uuid.uuid4()))  # gone after Notify's seven days
    assert caught.value.code == 404
    notify.fail_next(503)
    with pytest.raises(RetryableDeliveryError):
        emails.fetch_status(email_id)


# -- through the Deliverer and a real database -------------------------------------------------


def queue_letter(rt: Runtime, key: str) -> int:
    with rt.db.transaction() as session:
        row = OutboxMessage(
            idempotency_key=key,
            kind="test_letter",
            case_id=None,
            recipient_role="family",
            recipient="P1",
            address=CANARY_ADDRESS,
            channel="notify_email",
            status="queued",
            next_attempt_at=NOW,
            created_at=NOW,
            payload={},
        )
        session.add(row)
        session.flush()
        return row.id


def deliverer(rt: Runtime, notify: FakeNotify) -> Deliverer:
    def render(session: Session, row: OutboxMessage) -> OutgoingEmail:
        return email(reference=row.idempotency_key, to=row.address)

    renderers: dict[str, Callable[[Session, OutboxMessage], OutgoingEmail]] = {"test_letter": render}
    return Deliverer(
        db=rt.db,
        channels={"notify_email": email_channel(notify)},
        renderers=renderers,
        retry=RetryPolicy(max_attempts=5, base_seconds=60),
        clock=fixed_clock(NOW),
    )


def outbox_row(rt: Runtime, outbox_id: int) -> OutboxMessage:
    with rt.db.transaction() as session:
        found = session.get(OutboxMessage, outbox_id)
        assert found is not None
        return found


def test_the_deliverer_sends_through_notify_and_records_its_id(runtime: Runtime, notify: FakeNotify) -> None:
    outbox_id = queue_letter(runtime, "letter:case-9:closing:P1")
    assert deliverer(runtime, notify).deliver(outbox_id) == "sent"
    row = outbox_row(runtime, outbox_id)
    [stored] = notify.of_type("email")
    assert (row.status, row.provider_ref, stored.reference) == ("sent", stored.id, "letter:case-9:closing:P1")
    assert row.handed_over_at is not None


def test_the_deliverer_fails_a_400_at_once_and_never_retries_it(runtime: Runtime, notify: FakeNotify) -> None:
    outbox_id = queue_letter(runtime, "letter:case-9:closing:P1")
    notify.fail_next(400)
    assert deliverer(runtime, notify).deliver(outbox_id) == "failed"
    row = outbox_row(runtime, outbox_id)
    assert (row.status, row.attempts) == ("failed", 1) and "400" in (row.last_error or "")
    assert deliverer(runtime, notify).deliver(outbox_id) == "skipped: already failed"
    assert notify.posts() == 1


def test_the_deliverer_queues_a_5xx_again_with_back_off(runtime: Runtime, notify: FakeNotify) -> None:
    outbox_id = queue_letter(runtime, "letter:case-9:closing:P1")
    notify.fail_next(500)
    assert deliverer(runtime, notify).deliver(outbox_id) == "retrying"
    row = outbox_row(runtime, outbox_id)
    assert (row.status, row.attempts) == ("queued", 1)
    assert NOW + timedelta(seconds=29) < row.next_attempt_at <= NOW + timedelta(seconds=91)
    assert deliverer(runtime, notify).deliver(outbox_id) == "sent"  # the broker brings it back later
    assert len(notify.of_type("email")) == 1


def test_a_send_left_stale_after_hand_over_is_settled_by_asking_notify(
    runtime: Runtime, notify: FakeNotify
) -> None:
    """The worker died after handing over: sent if Notify has it, requeued if Notify says not."""
    went = queue_letter(runtime, "letter:case-9:closing:P1")
    lost = queue_letter(runtime, "letter:case-9:closing:P2")
    email_channel(notify).send(email(reference="letter:case-9:closing:P1"), Handovers(notify))
    with runtime.db.transaction() as session:
        for outbox_id in (went, lost):
            row = session.get(OutboxMessage, outbox_id)
            assert row is not None
            row.status, row.attempts = "sending", 1
            row.sending_started_at = row.handed_over_at = NOW - timedelta(hours=1)
    counts = reconcile(runtime, {"notify_email": email_channel(notify)}, NOW, timedelta(minutes=10))
    assert counts == {"requeued": 1, "confirmed": 1, "unknown": 0}
    assert (outbox_row(runtime, went).status, outbox_row(runtime, lost).status) == ("sent", "queued")
    assert notify.posts() == 1  # nothing was sent again to find out
