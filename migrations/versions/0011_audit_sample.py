"""audit sample: the cases drawn each month for a manager's audit, and the findings recorded

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import workflow.db

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

UTC = workflow.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "audit_samples",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("team", sa.String(length=64), nullable=False),
        sa.Column("drawn_at", UTC, nullable=False),
        sa.Column("drawn_by", sa.String(length=64), nullable=False),
        # Drawing again never adds a case twice.
        sa.UniqueConstraint("month", "case_id", name="uq_audit_samples_month_case"),
    )
    op.create_index("ix_audit_samples_month_team", "audit_samples", ["month", "team"])
    # Append-only in use: a correction is a new row, so earlier answers are kept.
    op.create_table(
        "audit_findings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("sample_id", sa.Integer(), sa.ForeignKey("audit_samples.id"), nullable=False),
        sa.Column("family_told", sa.String(length=16), nullable=False),
        sa.Column("referrer_told", sa.String(length=16), nullable=False),
        sa.Column("letters_right", sa.String(length=16), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", UTC, nullable=False),
    )
    op.create_index("ix_audit_findings_sample_id", "audit_findings", ["sample_id"])


def downgrade() -> None:
    op.drop_index("ix_audit_findings_sample_id", "audit_findings")
    op.drop_table("audit_findings")
    op.drop_index("ix_audit_samples_month_team", "audit_samples")
    op.drop_table("audit_samples")
