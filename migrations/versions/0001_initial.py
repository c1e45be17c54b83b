"""cases, events, history and clocks

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import workflow.db

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("episode", sa.Integer(), nullable=False),
        sa.Column("team", sa.String(length=64), nullable=False),
        sa.Column("worker", sa.String(length=64), nullable=True),
        sa.Column("referral_at", workflow.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("referral_source", sa.String(length=4), nullable=False),
        sa.Column("decision", sa.String(length=32), nullable=True),
        sa.Column("assessment_started", sa.Boolean(), nullable=False),
        sa.Column("assessment_completed", sa.Boolean(), nullable=False),
        sa.Column("factors", sa.JSON(), nullable=False),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("child", sa.JSON(), nullable=False),
        sa.Column("referrer", sa.JSON(), nullable=False),
        sa.Column("household", sa.JSON(), nullable=False),
        sa.Column("closed_at", workflow.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closure_reason", sa.String(length=8), nullable=True),
        sa.Column("updated_at", workflow.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ref"),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cases_team"), ["team"], unique=False)
        batch_op.create_index(batch_op.f("ix_cases_worker"), ["worker"], unique=False)

    op.create_table(
        "received_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=True),
        sa.Column("claimed_id", sa.String(length=128), nullable=True),
        sa.Column("case_ref", sa.String(length=64), nullable=True),
        sa.Column("type", sa.String(length=64), nullable=True),
        sa.Column("occurred_at", workflow.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rejection_kind", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("received_at", workflow.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", workflow.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("received_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_received_events_case_ref"), ["case_ref"], unique=False)
        batch_op.create_index("ix_received_events_status", ["status", "rejection_kind"], unique=False)

    op.create_table(
        "case_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("episode", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("at", workflow.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", workflow.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["received_events.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("case_history", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_history_case_id"), ["case_id"], unique=False)

    op.create_table(
        "clocks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("episode", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("started_at", workflow.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("counted_from", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("stopped_at", workflow.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("stopped_on", sa.Date(), nullable=True),
        sa.Column("paused_on", sa.Date(), nullable=True),
        sa.Column("paused_days", sa.Integer(), nullable=False),
        sa.Column("policy_version", sa.String(length=64), nullable=False),
        sa.Column("calendar_version", sa.String(length=32), nullable=False),
        sa.Column("updated_at", workflow.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "episode", "name", "seq", name="uq_clocks_case_episode_name_seq"),
    )
    with op.batch_alter_table("clocks", schema=None) as batch_op:
        batch_op.create_index("ix_clocks_case", ["case_id", "episode"], unique=False)
        batch_op.create_index("ix_clocks_status_due", ["status", "due_on"], unique=False)

    _make_history_append_only()


# The case history is evidence: the database itself refuses to change or remove a row.
def _make_history_append_only() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION caseloop_refuse_history_change() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION 'case_history is append-only';
            END;
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            "CREATE TRIGGER case_history_append_only BEFORE UPDATE OR DELETE ON case_history "
            "FOR EACH ROW EXECUTE FUNCTION caseloop_refuse_history_change()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER case_history_no_{action.lower()} BEFORE {action} ON case_history "
                "BEGIN SELECT RAISE(ABORT, 'case_history is append-only'); END"
            )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER case_history_append_only ON case_history")
        op.execute("DROP FUNCTION caseloop_refuse_history_change()")
    else:
        op.execute("DROP TRIGGER case_history_no_update")
        op.execute("DROP TRIGGER case_history_no_delete")
    with op.batch_alter_table("clocks", schema=None) as batch_op:
        batch_op.drop_index("ix_clocks_status_due")
        batch_op.drop_index("ix_clocks_case")

    op.drop_table("clocks")
    with op.batch_alter_table("case_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_history_case_id"))

    op.drop_table("case_history")
    with op.batch_alter_table("received_events", schema=None) as batch_op:
        batch_op.drop_index("ix_received_events_status")
        batch_op.drop_index(batch_op.f("ix_received_events_case_ref"))

    op.drop_table("received_events")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cases_worker"))
        batch_op.drop_index(batch_op.f("ix_cases_team"))

    op.drop_table("cases")
