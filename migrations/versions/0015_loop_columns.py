"""clocks.case_ref and outbox.episode: the open loops and the overdue queue read from indexes alone

The open-loops page joined every owed duty's clock to its case (for the reference) and to its
letters (whose episode was only in the JSON payload), and the overdue queue sorted by the case's
reference: each read thousands of wide rows to show fifty. A clock now carries its case's
reference (a case's reference never changes) and a letter the episode it belongs to (set when it
is made, never changed), both backfilled here; the live clocks of each name are indexed by team,
the letters of duties by case, duty and episode, and the counting clocks by due date then
reference, with what the queues read of them. The predicates are literal, as they were when made.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-15
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

COUNTING_CLOCKS = sa.text("status IN ('breached', 'running')")
LIVE_CLOCKS = sa.text("status IN ('breached', 'paused', 'running')")
DUTY_LETTERS = sa.text("duty IS NOT NULL")
NOT_GONE_LETTERS = sa.text(
    "duty IS NOT NULL AND status IN ('failed', 'held', 'queued', 'rejected', 'sending', 'unknown')"
)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.drop_index("ix_clocks_counting_due", "clocks")  # made again with the reference in its key
    op.add_column("clocks", sa.Column("case_ref", sa.String(64), nullable=True))
    op.add_column("outbox", sa.Column("episode", sa.Integer, nullable=True))
    if postgres:
        op.execute("UPDATE clocks SET case_ref = cases.ref FROM cases WHERE cases.id = clocks.case_id")
        op.alter_column("clocks", "case_ref", nullable=False)
        op.execute("UPDATE outbox SET episode = (payload->>'episode')::int")
    else:
        op.execute("UPDATE clocks SET case_ref = (SELECT ref FROM cases WHERE cases.id = clocks.case_id)")
        op.execute("UPDATE outbox SET episode = CAST(json_extract(payload, '$.episode') AS INTEGER)")
        # SQLite sets NOT NULL only by copying the table; the copy leaves out the partial
        # indexes, which are made again as they were.
        for name in ("ix_clocks_live", "ix_clocks_counting_team"):
            op.drop_index(name, "clocks")
        with op.batch_alter_table("clocks", recreate="always") as batch:
            batch.alter_column("case_ref", existing_type=sa.String(64), nullable=False)
        op.create_index("ix_clocks_live", "clocks", ["case_id"], sqlite_where=LIVE_CLOCKS)
        op.create_index("ix_clocks_counting_team", "clocks", ["team", "due_on"], sqlite_where=COUNTING_CLOCKS)
    _counting_by_due(["due_on", "case_ref", "name", "id"], ["case_id", "episode", "team"])
    op.create_index(
        "ix_clocks_live_duty",
        "clocks",
        ["name", "team"],
        postgresql_where=LIVE_CLOCKS,
        sqlite_where=LIVE_CLOCKS,
        postgresql_include=["case_id", "case_ref", "episode", "seq", "started_at", "due_on", "status"],
    )
    op.create_index(
        "ix_outbox_letters",
        "outbox",
        ["case_id", "duty", "episode"],
        postgresql_where=DUTY_LETTERS,
        sqlite_where=DUTY_LETTERS,
        postgresql_include=["status", "recipient_role", "recipient"],
    )
    op.create_index(
        "ix_outbox_not_gone",
        "outbox",
        ["case_id", "duty"],
        postgresql_where=NOT_GONE_LETTERS,
        sqlite_where=NOT_GONE_LETTERS,
        postgresql_include=["episode", "status", "recipient_role", "recipient", "id"],
    )


def _counting_by_due(columns: list[str], include: list[str]) -> None:
    op.create_index(
        "ix_clocks_counting_due",
        "clocks",
        columns,
        postgresql_where=COUNTING_CLOCKS,
        sqlite_where=COUNTING_CLOCKS,
        postgresql_include=include,
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_not_gone", "outbox")
    op.drop_index("ix_outbox_letters", "outbox")
    op.drop_index("ix_clocks_live_duty", "clocks")
    op.drop_index("ix_clocks_counting_due", "clocks")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_column("outbox", "episode")
        op.drop_column("clocks", "case_ref")
    else:
        with op.batch_alter_table("outbox", recreate="always") as batch:
            batch.drop_column("episode")
        for name in ("ix_clocks_live", "ix_clocks_counting_team"):
            op.drop_index(name, "clocks")
        with op.batch_alter_table("clocks", recreate="always") as batch:
            batch.drop_column("case_ref")
        op.create_index("ix_clocks_live", "clocks", ["case_id"], sqlite_where=LIVE_CLOCKS)
        op.create_index("ix_clocks_counting_team", "clocks", ["team", "due_on"], sqlite_where=COUNTING_CLOCKS)
    _counting_by_due(["due_on"], ["case_id", "episode", "name", "id", "team"])
