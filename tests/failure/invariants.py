"""The one check every failure scenario ends with: nothing was done twice, nothing was lost.

After a scenario has settled, :func:`check` reads the deployment's database (and the SMTP server,
when the scenario has one) and asserts that

- every reminder that was planned is in an outbox row that is ``sent``, or visibly not
  (``failed`` or ``unknown``, each with its reason), and no row is stuck: none ``sending`` and
  none ``queued`` long past the time it was due;
- no two messages went with the same idempotency key (the SMTP server saw each reference once),
  and no letter was sent twice to one recipient for one duty;
- every event that was posted is a ``received_events`` row: accepted, or rejected with a reason
  (a duplicate is skipped against the row of its first copy, so it needs none of its own).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from messaging.email import REFERENCE_HEADER
from tests.e2e.engine import Engine
from tests.e2e.services import SmtpSink

VISIBLY_NOT_SENT = {"failed", "unknown"}


def _rows(engine: Engine, sql: str) -> list[dict[str, Any]]:
    with engine._db.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(sql))]


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def check(
    engine: Engine,
    sink: SmtpSink | None = None,
    *,
    posted_event_ids: Iterable[str] = (),
    overdue_grace: timedelta = timedelta(seconds=30),
) -> None:
    """Assert the shared invariants over ``engine``'s database (and ``sink``'s mail)."""
    outbox = _rows(
        engine,
        "SELECT id, idempotency_key, kind, case_id, duty, source_event, recipient, status,"
        " next_attempt_at, last_error FROM outbox ORDER BY id",
    )
    problems: list[str] = []
    by_id = {r["id"]: r for r in outbox}
    now = datetime.now(UTC)

    # Nothing stuck: a send in flight after the scenario settled belongs to a worker that died
    # unnoticed; a queued message long past its time was lost between the database and the broker.
    for row in outbox:
        if row["status"] == "sending":
            problems.append(f"outbox {row['id']} is still sending")
        due = _aware(row["next_attempt_at"])
        if row["status"] == "queued" and due is not None and due < now - overdue_grace:
            problems.append(f"outbox {row['id']} has been queued since {due:%H:%M:%S} past its time")
        if row["status"] in VISIBLY_NOT_SENT and not (row["last_error"] or "").strip():
            problems.append(f"outbox {row['id']} is {row['status']} without saying why")

    # Every reminder planned reached its digest, and the digest went or visibly did not.
    for item in _rows(engine, "SELECT id, outbox_id FROM reminder_items ORDER BY id"):
        digest = by_id.get(item["outbox_id"])
        if digest is None:
            problems.append(f"reminder item {item['id']} is in no outbox row")
        elif digest["status"] not in {"sent", *VISIBLY_NOT_SENT}:
            problems.append(f"reminder item {item['id']}: its digest {digest['id']} is {digest['status']}")

    # No letter twice to one recipient for one duty.
    letters = Counter(
        (r["case_id"], r["duty"], r["source_event"], r["recipient"])
        for r in outbox
        if r["duty"] is not None and r["status"] == "sent"
    )
    problems += [f"letter {key} sent {n} times" for key, n in letters.items() if n > 1]

    if sink is not None:
        # The wire: each message's reference (its idempotency key) arrived once, and only sent
        # or unknown rows (handed over, reply lost) may have arrived at all.
        references = Counter(str(m.message[REFERENCE_HEADER]) for m in sink.received())
        problems += [f"reference {ref} arrived {n} times" for ref, n in references.items() if n > 1]
        keys = {r["idempotency_key"]: r for r in outbox}
        for ref in references:
            row = keys.get(ref)
            if row is None:
                problems.append(f"a message arrived with reference {ref} that no outbox row has")
            elif row["status"] not in {"sent", "unknown"}:
                problems.append(f"outbox {row['id']} arrived but is {row['status']}")

    wanted = set(posted_event_ids)
    if wanted:
        received = {
            r["event_id"]: r
            for r in _rows(engine, "SELECT event_id, status, reason FROM received_events")
            if r["event_id"] is not None
        }
        for event_id in sorted(wanted - received.keys()):
            problems.append(f"event {event_id} was posted but never received")
        for event_id in sorted(wanted & received.keys()):
            row = received[event_id]
            if row["status"] != "accepted" and not (row["reason"] or "").strip():
                problems.append(f"event {event_id} is {row['status']} without a reason")

    assert not problems, "invariants broken:\n" + "\n".join(problems) + "\n" + engine.diagnostics(sink)
