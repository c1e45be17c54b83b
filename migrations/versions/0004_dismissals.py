"""dismissals: who set a rejected event aside, when and why

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import workflow.db

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("received_events") as table:
        table.add_column(sa.Column("dismissed_by", sa.String(length=64), nullable=True))
        table.add_column(sa.Column("dismissed_at", workflow.db.UTCDateTime(timezone=True), nullable=True))
        table.add_column(sa.Column("dismissal", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("received_events") as table:
        table.drop_column("dismissal")
        table.drop_column("dismissed_at")
        table.drop_column("dismissed_by")
