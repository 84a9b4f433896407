"""A partial index for the dialer's queue poll (queued top-level calls, oldest first).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_QUEUED = "state = 'queued' AND parent_sid IS NULL"


def upgrade() -> None:
    op.create_index("ix_calls_queued", "calls", ["date_created"],
                    sqlite_where=sa.text(_QUEUED), postgresql_where=sa.text(_QUEUED))


def downgrade() -> None:
    op.drop_index("ix_calls_queued", table_name="calls")
