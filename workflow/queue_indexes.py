"""The partial indexes the queues read through, as the models declare them.

Most cases are closed and most clocks have stopped, so a queue that starts from a team's open
cases or from the clocks still counting must not walk the rest. Each index holds only the live
rows (``postgresql_where`` and ``sqlite_where`` alike) and, on PostgreSQL, carries the columns
the queues read (INCLUDE), so that the planner answers from the index without visiting the wide
case rows. Migration 0013 created the first two with the same literal predicates; migration 0014
the counting clocks' two, in the order the queues read them (due date first, or team then due
date), so that a queue's first page and its count are both read from one range of one index.
Migration 0015 put the case's reference into the first one's key (the overdue queue's whole
order), and added the two the open loops read: the live clocks by name and team, and the letters
of duties by case, duty and episode.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Index, and_, column, literal_column

# The clock statuses of workflow.clocks.ACTIVE and the case states of
# workflow.lifecycle.OPEN_STATES, written out (a test checks they still agree): an index's
# predicate is fixed when the index is made, and the model module must not import the engine.
LIVE_CLOCK_STATUSES = ("breached", "paused", "running")
# The clocks counting down (a paused one is not), as the queues of overdue and at-risk clocks
# read them: workflow.queries and services.team_queue (a test checks they agree).
COUNTING_CLOCK_STATUSES = ("breached", "running")
# The letters that have not reached their reader, as the open loops count them
# (messaging.open_loops: a test checks they agree).
NOT_GONE_LETTER_STATUSES = ("failed", "held", "queued", "rejected", "sending", "unknown")
OPEN_CASE_STATES = (
    "assessment",
    "cin_plan",
    "concluded",
    "cp_plan",
    "icpc_pending",
    "referral",
    "referral_nfa",
    "stepped_down",
    "strategy",
)


def _in(name: str, values: tuple[str, ...]) -> ColumnElement[bool]:
    # Literals, not bound parameters: DDL carries no parameters.
    return column(name).in_([literal_column(f"'{v}'") for v in values])


def clocks_live() -> Index:
    """The clocks still live (running, breached, paused), by case."""
    where = _in("status", LIVE_CLOCK_STATUSES)
    return Index(
        "ix_clocks_live",
        "case_id",
        postgresql_where=where,
        sqlite_where=where,
        postgresql_include=["name", "status", "due_on", "episode", "seq", "started_at", "id"],
    )


def cases_open_by_team() -> Index:
    """The open cases, by team."""
    where = _in("state", OPEN_CASE_STATES)
    return Index(
        "ix_cases_open_team",
        "team",
        postgresql_where=where,
        sqlite_where=where,
        postgresql_include=["id", "worker", "state", "ref", "referral_at"],
    )


# What a queue reads of each counting clock besides its key: enough to page, count and explain it
# without the clock's row (the case's reference and worker come from the case, a row per page).
_COUNTING_COLUMNS = ["case_id", "episode", "name", "id"]


def clocks_counting_by_due() -> Index:
    """The clocks counting down in the overdue queue's order (due date, the case's reference, the
    clock's name and id): its first page of every team is the start of the index."""
    where = _in("status", COUNTING_CLOCK_STATUSES)
    return Index(
        "ix_clocks_counting_due",
        "due_on",
        "case_ref",
        "name",
        "id",
        postgresql_where=where,
        sqlite_where=where,
        postgresql_include=["case_id", "episode", "team"],
    )


def clocks_counting_by_team() -> Index:
    """The clocks counting down, by team and due date: one team's queue, its overdue clocks."""
    where = _in("status", COUNTING_CLOCK_STATUSES)
    return Index(
        "ix_clocks_counting_team",
        "team",
        "due_on",
        postgresql_where=where,
        sqlite_where=where,
        postgresql_include=_COUNTING_COLUMNS,
    )


def clocks_live_by_duty() -> Index:
    """The clocks still live, by name and team: a team's (or a service's) owed duties, with what
    the open loops show of each, so that neither the clocks nor the cases are read."""
    where = _in("status", LIVE_CLOCK_STATUSES)
    return Index(
        "ix_clocks_live_duty",
        "name",
        "team",
        postgresql_where=where,
        sqlite_where=where,
        postgresql_include=["case_id", "case_ref", "episode", "seq", "started_at", "due_on", "status"],
    )


def outbox_duty_letters() -> Index:
    """The letters of duties, by case, duty and episode: whether an owed duty has letters and
    which have not gone, read from the index alone (digests, of no duty, are left out)."""
    where = column("duty").is_not(None)
    return Index(
        "ix_outbox_letters",
        "case_id",
        "duty",
        "episode",
        postgresql_where=where,
        sqlite_where=where,
        postgresql_include=["status", "recipient_role", "recipient"],
    )


def outbox_letters_not_gone() -> Index:
    """The letters of duties that have not gone, by case and duty, with all the open loops show of
    them: the loops of letters are the live duties' clocks hashed against this small index."""
    where = and_(column("duty").is_not(None), _in("status", NOT_GONE_LETTER_STATUSES))
    return Index(
        "ix_outbox_not_gone",
        "case_id",
        "duty",
        postgresql_where=where,
        sqlite_where=where,
        postgresql_include=["episode", "status", "recipient_role", "recipient", "id"],
    )
