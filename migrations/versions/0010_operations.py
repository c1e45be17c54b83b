"""operations: the last sweep's heartbeat, one stored receipt per Notify id and status, and an
index for the latest delivery attempt

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import workflow.db

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

UTC = workflow.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "heartbeats",
        sa.Column("name", sa.String(length=32), primary_key=True),
        sa.Column("finished_at", UTC, nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=False),
    )
    # Notify retries a receipt it thinks we missed: the same id and status is one row, counted.
    op.create_index("ux_notify_receipts_id_status", "notify_receipts", ["notify_id", "status"], unique=True)
    # Readiness and metrics ask for the latest delivery attempt at every scrape.
    op.create_index("ix_outbox_sending_started", "outbox", ["sending_started_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_sending_started", "outbox")
    op.drop_index("ux_notify_receipts_id_status", "notify_receipts")
    op.drop_table("heartbeats")
