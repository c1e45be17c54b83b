"""queue indexes: the live clocks by case, and the open cases by team (partial, covering)

The team queue, the caseloads, the unallocated cases and the open loops start from a team's
open cases or from the clocks still live; without these the planner walks every case of a team
(nine in ten closed) or every clock. The predicates are literal, as they were when made.

Revision ID: 0013_queue_indexes
Revises: 0011
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

LIVE_CLOCKS = sa.text("status IN ('breached', 'paused', 'running')")
OPEN_CASES = sa.text(
    "state IN ('assessment', 'cin_plan', 'concluded', 'cp_plan', 'icpc_pending', 'referral', "
    "'referral_nfa', 'stepped_down', 'strategy')"
)


def upgrade() -> None:
    op.create_index(
        "ix_clocks_live",
        "clocks",
        ["case_id"],
        postgresql_where=LIVE_CLOCKS,
        sqlite_where=LIVE_CLOCKS,
        postgresql_include=["name", "status", "due_on", "episode", "seq", "started_at", "id"],
    )
    op.create_index(
        "ix_cases_open_team",
        "cases",
        ["team"],
        postgresql_where=OPEN_CASES,
        sqlite_where=OPEN_CASES,
        postgresql_include=["id", "worker", "state", "ref", "referral_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_cases_open_team", "cases")
    op.drop_index("ix_clocks_live", "clocks")
