"""staff, outbox and reminders

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import workflow.db

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "reminder_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("planned_at", workflow.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("digests", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day"),
    )
    op.create_table(
        "staff",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("team", sa.String(length=64), nullable=False),
        sa.Column("manager_id", sa.String(length=64), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", workflow.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("staff", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staff_team"), ["team"], unique=False)

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("recipient_role", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.String(length=128), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("office_hours_only", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", workflow.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("dispatched_at", workflow.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sending_started_at", workflow.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("handed_over_at", workflow.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sent_at", workflow.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", workflow.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("provider_ref", sa.String(length=255), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_status_next", ["status", "next_attempt_at"], unique=False)

    op.create_table(
        "reminder_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clock_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.String(length=64), nullable=False),
        sa.Column("recipient_role", sa.String(length=32), nullable=False),
        sa.Column("step", sa.String(length=16), nullable=False),
        sa.Column("step_key", sa.String(length=48), nullable=False),
        sa.Column("stage", sa.Integer(), nullable=False),
        sa.Column("for_date", sa.Date(), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("created_at", workflow.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
        ),
        sa.ForeignKeyConstraint(
            ["clock_id"],
            ["clocks.id"],
        ),
        sa.ForeignKeyConstraint(
            ["outbox_id"],
            ["outbox.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("clock_id", "recipient", "step_key", name="uq_reminder_item_once"),
    )
    with op.batch_alter_table("reminder_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reminder_items_clock_id"), ["clock_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_reminder_items_outbox_id"), ["outbox_id"], unique=False)

    op.create_table(
        "reminder_acks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("clock_id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.String(length=64), nullable=False),
        sa.Column("stage", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("at", workflow.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["clock_id"],
            ["clocks.id"],
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["reminder_items.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("reminder_acks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reminder_acks_clock_id"), ["clock_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("reminder_acks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reminder_acks_clock_id"))

    op.drop_table("reminder_acks")
    with op.batch_alter_table("reminder_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reminder_items_outbox_id"))
        batch_op.drop_index(batch_op.f("ix_reminder_items_clock_id"))

    op.drop_table("reminder_items")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_status_next")

    op.drop_table("outbox")
    with op.batch_alter_table("staff", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_team"))

    op.drop_table("staff")
    op.drop_table("reminder_days")
