"""letters: the outbox audit trail, and duty columns on the outbox

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import workflow.db

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("by", sa.String(length=64), nullable=False),
        sa.Column("at", workflow.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["outbox_id"],
            ["outbox.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("outbox_audit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_audit_outbox_id"), ["outbox_id"], unique=False)

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("template_version", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("duty", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("source_event", sa.String(length=128), nullable=True))
        batch_op.create_index("ix_outbox_duty", ["case_id", "duty", "source_event"], unique=False)

    # Like the case history, the audit trail is evidence: the database refuses to change it.
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION caseloop_refuse_audit_change() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION 'outbox_audit is append-only';
            END;
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            "CREATE TRIGGER outbox_audit_append_only BEFORE UPDATE OR DELETE ON outbox_audit "
            "FOR EACH ROW EXECUTE FUNCTION caseloop_refuse_audit_change()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER outbox_audit_no_{action.lower()} BEFORE {action} ON outbox_audit "
                "BEGIN SELECT RAISE(ABORT, 'outbox_audit is append-only'); END"
            )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER outbox_audit_append_only ON outbox_audit")
        op.execute("DROP FUNCTION caseloop_refuse_audit_change()")
    else:
        op.execute("DROP TRIGGER outbox_audit_no_update")
        op.execute("DROP TRIGGER outbox_audit_no_delete")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_duty")
        batch_op.drop_column("source_event")
        batch_op.drop_column("duty")
        batch_op.drop_column("template_version")

    with op.batch_alter_table("outbox_audit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_audit_outbox_id"))

    op.drop_table("outbox_audit")
