"""Event factories: valid events by default, any field overridable. No fixture files."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

_ids = itertools.count(1)


def person(pid: str = "P1", **overrides: Any) -> dict[str, Any]:
    base = {
        "id": pid,
        "name": "Parent Example",
        "relationship": "mother",
        "email": None,
        "address": "1 Test Street, Borough",
        "preferred_channel": "post",
        "safe_to_contact": True,
        "confidential_address": False,
    }
    return {**base, **overrides}


def referral(case: str, at: str, *, source: str = "2A", **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "child": {
            "name": "Child Example",
            "dob": "2016-05-01",
            "school": {"name": "Test Primary", "dsl_name": "Lead Example", "email": "dsl@school.example"},
        },
        "referrer": {
            "source": source,
            "organisation": "Test Primary",
            "name": "Referrer Example",
            "email": "ref@school.example",
        },
        "household": [person()],
        "team": "front-door",
        "flags": [],
    }
    fields.update(overrides)
    return event("referral.received", case, at, **fields)


def no_contact_referrer(source: str = "1A") -> dict[str, Any]:
    """A referrer who left no contact details (anonymous or not given): no letter can go to them,
    so a referral with this referrer puts no letter in the outbox when it is received."""
    return {"source": source}


def event(kind: str, case: str, at: str, *, id: str | None = None, **fields: Any) -> dict[str, Any]:
    """An event of ``kind`` on ``case`` at ``at`` (ISO 8601 with offset, or a date for 10:00 UTC)."""
    if len(at) == 10:
        at = f"{at}T10:00:00+00:00"
    return {"id": id or f"ev-{next(_ids)}", "case": case, "type": kind, "at": at, **fields}


def jsonl(*events: dict[str, Any]) -> list[str]:
    return [json.dumps(e) + "\n" for e in events]


def instant(text: str) -> datetime:
    if len(text) == 10:
        text = f"{text}T12:00:00+00:00"
    return datetime.fromisoformat(text)


# Helpers for integration tests: drive the real intake and read back through the real queries.


def import_events(rt: Any, *events: dict[str, Any], now: str, source: str = "t.jsonl") -> Any:
    """Import ``events`` as one JSON Lines file through ``services.intake`` at ``now``."""
    from services import intake
    from services.actors import SYSTEM

    return intake.import_events(rt, SYSTEM, jsonl(*events), source, instant(now))


def import_line_by_line(rt: Any, *events: dict[str, Any], now: str, source: str = "t.jsonl") -> Any:
    """Import ``events`` through the intake's line-by-line path (the one a batch falls back to
    when its bulk write fails), committed, at ``now``."""
    from workflow import intake
    from workflow.intake import ImportReport

    report = ImportReport()
    with rt.writing() as uow:
        intake.import_lines(
            uow.session, rt.book, enumerate(jsonl(*events), start=1), source, instant(now), report
        )
        uow.commit()
    return report


def clocks_by_name(rt: Any, case: str, now: str) -> dict[str, dict[str, Any]]:
    """The case's clocks from ``case_view``, keyed by name (the latest episode and seq win)."""
    view = case_view(rt, case, now)
    found: dict[str, dict[str, Any]] = {}
    for clock in sorted(view["clocks"], key=lambda c: (c["episode"], c["seq"])):
        found[clock["name"]] = clock  # the newest of a name is kept
    return found


def case_view(rt: Any, case: str, now: str) -> dict[str, Any]:
    from services import queries
    from services.actors import SYSTEM

    return queries.case(rt, SYSTEM, case, instant(now))


def history_of(rt: Any, case: str, kind: str | None = None) -> list[Any]:
    """The case's history rows in order, optionally only those of ``kind``."""
    from sqlalchemy import select

    from workflow.model import Case, HistoryEntry

    with rt.db.transaction() as session:
        query = (
            select(HistoryEntry)
            .join(Case, Case.id == HistoryEntry.case_id)
            .where(Case.ref == case)
            .order_by(HistoryEntry.id)
        )
        if kind is not None:
            query = query.where(HistoryEntry.kind == kind)
        return list(session.scalars(query))


# Staff and reminders (issue 3): staff files built in code, and the sweep driven at a given instant.

STAFF_HEADER = "id,name,email,role,team,manager_id"


def staff_row(
    sid: str,
    role: str = "social_worker",
    *,
    team: str = "front-door",
    manager: str = "",
    name: str | None = None,
    email: str | None = None,
) -> str:
    """One line of a staff CSV (no newline); the name and email follow from the id by default."""
    return ",".join(
        [
            sid,
            name or f"Staff {sid}",
            email if email is not None else f"{sid.lower()}@council.example",
            role,
            team,
            manager,
        ]
    )


def staff_csv(*rows: str, header: str = STAFF_HEADER) -> list[str]:
    """A staff file's lines, header first, as ``workflow.staff.import_csv`` reads them."""
    return [f"{line}\n" for line in (header, *rows)]


def front_door_staff() -> list[str]:
    """A service manager SM1 over team manager TM1 over social workers W1 and W2."""
    return [
        staff_row("SM1", "service_manager"),
        staff_row("TM1", "team_manager", manager="SM1"),
        staff_row("W1", manager="TM1"),
        staff_row("W2", manager="TM1"),
    ]


def import_staff(rt: Any, *rows: str, now: str = "2026-01-05") -> Any:
    """Import ``rows`` (default: the front-door team) through ``services.people.import_staff``."""
    from services.actors import SYSTEM
    from services.people import import_staff

    return import_staff(rt, SYSTEM, staff_csv(*(rows or front_door_staff())), instant(now))


def sweep(rt: Any, now: datetime) -> Any:
    """One pass of ``services.sweep.sweep`` at ``now``, then its confirmations and status reads
    in this process (as ``caseloop tick`` runs them)."""
    from services import sweep as sweeping
    from services.actors import SYSTEM

    report = sweeping.sweep(rt, SYSTEM, now)
    sweeping.follow_up(rt, SYSTEM, report, now)
    return report


# Letters (issue 4): runtimes on a clock the test moves, a real SMTP server, and the outbox read back.


class MovableClock:
    """A clock a test sets by hand; a runtime built on it stamps sends and duties at ``now``."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def letter_runtime(database_url: str, var_dir: Any, clock: MovableClock, **settings: Any) -> Any:
    """A runtime on a migrated database with the shipped policy, its channels from ``settings``."""
    from config.settings import Settings
    from config.wiring import build_runtime
    from migrations import upgrade

    upgrade(database_url)
    return build_runtime(Settings(database_url=database_url, var_dir=var_dir, **settings), clock)


class SmtpRecorder:
    """An aiosmtpd handler keeping every accepted envelope; ``rcpt`` refuses recipients with that reply."""

    def __init__(self, rcpt: str | None = None) -> None:
        self.rcpt = rcpt
        self.received: list[Any] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.rcpt:
            return self.rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(envelope)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Any]:
        """The messages accepted for ``address``, parsed."""
        from email import message_from_bytes, policy

        mine = [e for e in self.received if address in e.rcpt_tos]
        return [message_from_bytes(e.content, policy=policy.default) for e in mine]


@contextmanager
def smtp_server(handler: Any) -> Iterator[str]:
    """aiosmtpd on a free 127.0.0.1 port while the block runs; yields the ``smtp://`` URL."""
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    controller = Controller(handler, hostname="127.0.0.1", port=port, server_hostname="smtp.caseloop.test")
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}"
    finally:
        controller.stop()


def letters_of(rt: Any, case: str) -> list[Any]:
    """The case's letters (outbox rows with a duty), oldest first."""
    from sqlalchemy import select

    from messaging.outbox import OutboxMessage
    from workflow.model import Case

    with rt.db.transaction() as session:
        query = (
            select(OutboxMessage)
            .join(Case, Case.id == OutboxMessage.case_id)
            .where(Case.ref == case, OutboxMessage.duty.is_not(None))
            .order_by(OutboxMessage.id)
        )
        return list(session.scalars(query))


def letter_of(rt: Any, case: str, kind: str, recipient: str) -> Any:
    """The one letter of ``kind`` to ``recipient`` (a person id, "referrer" or "school") on ``case``."""
    [found] = [m for m in letters_of(rt, case) if (m.kind, m.recipient) == (kind, recipient)]
    return found


def audit_of(rt: Any, outbox_id: int) -> list[tuple[str, str, str | None]]:
    """The message's audit trail: (action, by, note), oldest first."""
    from sqlalchemy import select

    from messaging.outbox import OutboxAudit

    with rt.db.transaction() as session:
        rows = session.scalars(
            select(OutboxAudit).where(OutboxAudit.outbox_id == outbox_id).order_by(OutboxAudit.id)
        )
        return [(a.action, a.by, a.note) for a in rows]


def sweep_and_deliver(rt: Any, now: datetime) -> dict[int, str]:
    """One sweep at ``now`` (the runtime's clock set to it), then every claimed message
    delivered by ``Runtime.deliverer``: what happened to each, by outbox id."""
    rt.clock.now = now
    return {oid: rt.deliverer().deliver(oid) for oid in sweep(rt, now).to_deliver}


# Use cases on behalf of a member of staff, through the services as the CLI calls them.


def approve(rt: Any, outbox_id: int, staff_id: str, note: str | None, now: datetime) -> None:
    from services.letters import approve_letter
    from services.people import identify

    approve_letter(rt, identify(rt, staff_id), outbox_id, note or "read it: safe to send", now)


def reject(rt: Any, outbox_id: int, staff_id: str, reason: str, now: datetime) -> None:
    from services.letters import reject_letter
    from services.people import identify

    reject_letter(rt, identify(rt, staff_id), outbox_id, reason, now)


def acknowledge(rt: Any, item_id: int, staff_id: str, note: str | None, now: datetime) -> Any:
    from services.casework import acknowledge_reminder
    from services.people import identify

    return acknowledge_reminder(rt, identify(rt, staff_id), item_id, note, now)


def update_clocks(rt: Any, now: datetime, book: Any = None) -> Any:
    """Recalculate and mark breaches at ``now`` (under ``book`` instead of the runtime's, if given)."""
    from dataclasses import replace

    from services.actors import SYSTEM
    from services.sweep import update_clocks as update

    return update(replace(rt, book=book) if book is not None else rt, SYSTEM, now)


def reconcile(rt: Any, channels: Any, now: datetime, timeout: Any) -> dict[str, int]:
    """Settle stale sends (the sweep's step) and confirm the ``unknown`` ones with ``channels``
    (the confirmation task's step), as one pass would: counts of each outcome."""
    from collections import Counter

    from messaging.reconcile import confirm_unknown, settle_stale

    with rt.db.transaction() as session:
        settled = settle_stale(session, now, timeout, rt.settings.max_attempts)
    asked = Counter(confirm_unknown(rt.db, channels, i, now) for i in settled.unknown)
    return {
        "requeued": settled.requeued + asked["requeued"],
        "confirmed": asked["confirmed"],
        "unknown": len(settled.unknown) - asked["requeued"] - asked["confirmed"],
    }
