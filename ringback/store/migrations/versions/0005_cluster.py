"""Tables that make several nodes one service: shared dial pacing and node heartbeats.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dial_pacing",
        sa.Column("account_sid", sa.String(34), primary_key=True),
        sa.Column("next_at", sa.Float(), nullable=False, server_default="0"),
    )
    op.create_table(
        "nodes",
        sa.Column("node_id", sa.String(64), primary_key=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("nodes")
    op.drop_table("dial_pacing")
