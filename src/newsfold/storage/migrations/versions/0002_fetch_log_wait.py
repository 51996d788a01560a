"""fetch_log.wait_ms: time a poll queued for its host's turn

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN with a constant default: no table rebuild on SQLite, and no
    # rewrite on PostgreSQL 11+, however long the history is.
    op.add_column(
        "fetch_log", sa.Column("wait_ms", sa.Integer(), server_default="0", nullable=False)
    )


def downgrade() -> None:
    with op.batch_alter_table("fetch_log") as batch_op:
        batch_op.drop_column("wait_ms")
