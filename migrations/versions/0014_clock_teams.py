"""clocks.team: each clock carries its case's team, and the counting clocks are indexed by it

A team's queue and its overdue clocks are read from the clocks still counting down, but the team
was only on the case: the planner had to reach through all of a team's cases (nine in ten
closed) or through every counting clock to find them. The clocks now carry the team (kept equal
to the case's by the domain, backfilled here) and two partial indexes hold the counting clocks in
the order the queues read them: by due date, and by team then due date. The predicates are
literal, as they were when made.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-14
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

COUNTING_CLOCKS = sa.text("status IN ('breached', 'running')")
COUNTING_COLUMNS = ["case_id", "episode", "name", "id"]
LIVE_CLOCKS = sa.text("status IN ('breached', 'paused', 'running')")


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.add_column("clocks", sa.Column("team", sa.String(64), nullable=True))
    if postgres:
        op.execute("UPDATE clocks SET team = cases.team FROM cases WHERE cases.id = clocks.case_id")
        op.alter_column("clocks", "team", nullable=False)
    else:
        op.execute("UPDATE clocks SET team = (SELECT team FROM cases WHERE cases.id = clocks.case_id)")
        # SQLite sets NOT NULL only by copying the table; the copy leaves out the partial index
        # of 0013, which is made again as it was.
        op.drop_index("ix_clocks_live", "clocks")
        with op.batch_alter_table("clocks", recreate="always") as batch:
            batch.alter_column("team", existing_type=sa.String(64), nullable=False)
        op.create_index("ix_clocks_live", "clocks", ["case_id"], sqlite_where=LIVE_CLOCKS)
    op.create_index(
        "ix_clocks_counting_due",
        "clocks",
        ["due_on"],
        postgresql_where=COUNTING_CLOCKS,
        sqlite_where=COUNTING_CLOCKS,
        postgresql_include=[*COUNTING_COLUMNS, "team"],
    )
    op.create_index(
        "ix_clocks_counting_team",
        "clocks",
        ["team", "due_on"],
        postgresql_where=COUNTING_CLOCKS,
        sqlite_where=COUNTING_CLOCKS,
        postgresql_include=COUNTING_COLUMNS,
    )


def downgrade() -> None:
    op.drop_index("ix_clocks_counting_team", "clocks")
    op.drop_index("ix_clocks_counting_due", "clocks")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_column("clocks", "team")
        return
    op.drop_index("ix_clocks_live", "clocks")
    with op.batch_alter_table("clocks", recreate="always") as batch:
        batch.drop_column("team")
    op.create_index("ix_clocks_live", "clocks", ["case_id"], sqlite_where=LIVE_CLOCKS)
