"""The 2026 daylight-saving Sundays against a real database: a reminder due around 01:30 local
(which does not exist in March and happens twice in October) goes out once, at the next opening."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from config.wiring import Runtime
from messaging.channels import FileChannel
from messaging.outbox import OutboxMessage
from tests.factories import event, import_events, import_staff, referral, sweep
from tests.unit.test_reminder_policy import DST_SUNDAYS, LONDON, local, quarter_hours
from workflow.reminders import DIGEST_KIND, ReminderDay, ReminderItem


@pytest.mark.parametrize("sunday", DST_SUNDAYS, ids=str)
def test_a_reminder_due_at_0130_local_on_a_dst_sunday_goes_out_once_at_monday_0800(
    runtime: Runtime, tmp_path: Path, sunday: date
) -> None:
    """Referrals arrive at 01:30 local on the DST Sunday (both readings of the missing or
    repeated time); their clocks fall due on Monday. The sweep runs every 15 minutes from
    Saturday to Monday noon: one digest, planned and sent at Monday 08:00 local, once. Each
    referral's acknowledgement letter (not office-hours-only) goes at 01:30, as it arrives."""
    runtime.channels["file"] = FileChannel(tmp_path / "outbox", runtime.settings.mail_from)
    import_staff(runtime)
    arrivals = sorted({local(sunday, time(1, 30), fold) for fold in (0, 1)})
    assert [a.astimezone(LONDON).date() for a in arrivals] == [sunday, sunday]
    pending = {
        at: [
            referral(f"D{n}", at.isoformat(), source="1A"),
            event("worker.allocated", f"D{n}", at.isoformat(), worker="W1"),
        ]
        for n, at in enumerate(arrivals, start=1)
    }
    deliverer = runtime.deliverer()
    plans, sends = [], []
    with freeze_time(quarter_hours(sunday)[0]) as frozen:
        for moment in quarter_hours(sunday):
            frozen.move_to(moment)
            now = datetime.now(UTC)
            for at in [a for a in pending if a <= now]:
                assert import_events(runtime, *pending.pop(at), now=now.isoformat()).ok
            report = sweep(runtime, now)
            if report.plan is not None and report.plan.planned:
                plans.append((now, report.plan.items, report.plan.digests))
            sends += [(now, oid, deliverer.deliver(oid)) for oid in report.to_deliver]

    opening = local(sunday + timedelta(days=1), time(8))
    assert pending == {}
    # Two cases, one clock each (the decision: the letter sent at 01:30 fulfilled the referrer
    # acknowledgement duty and stopped its clock), one digest.
    assert plans == [(opening, 2, 1)]
    with runtime.db.transaction() as session:
        (message,) = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == DIGEST_KIND)).all()
        letters = session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind != DIGEST_KIND).order_by(OutboxMessage.id)
        ).all()
        items = session.scalars(select(ReminderItem).order_by(ReminderItem.id)).all()
        days = session.scalars(select(ReminderDay.day)).all()
    assert [(m.duty, m.status, m.sent_at) for m in letters] == [
        ("referrer_acknowledgement", "sent", a) for a in arrivals
    ]
    assert sends == [
        *((a, m.id, "sent") for a, m in zip(arrivals, letters, strict=True)),
        (opening, message.id, "sent"),
    ]
    assert (message.recipient, message.status, message.sent_at) == ("W1", "sent", opening)
    assert {(i.recipient, i.step, i.for_date) for i in items} == {("W1", "due", opening.date())}
    assert len(items) == 2  # the decision clocks only: the letters fulfilled the acknowledgement duty
    assert days == [sunday + timedelta(days=1)]
    assert sorted(p.name for p in (tmp_path / "outbox").iterdir()) == sorted(
        f"outbox-{m.id}.eml" for m in (*letters, message)
    )
