"""Call list indexes that answer the first pages from the index alone.

Every list query has `parent_sid IS NULL` (Segments are not listed); that column was in no index,
so each candidate row cost a table lookup just to test it. The list indexes become partial
(`WHERE parent_sid IS NULL`) and end with (date_updated, sid), the list order, so a page is an
index range scan plus 50 row fetches; the StartTime index covers the sort for its ranges.
The parent index holds only Segments.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TOP = "parent_sid IS NULL"
LISTS = {
    "ix_calls_acct_updated": ["account_sid", "date_updated", "sid"],
    "ix_calls_acct_called": ["account_sid", "called", "date_updated", "sid"],
    "ix_calls_acct_caller": ["account_sid", "caller", "date_updated", "sid"],
    "ix_calls_acct_status": ["account_sid", "status", "date_updated", "sid"],
    "ix_calls_acct_start": ["account_sid", "start_time", "date_updated", "sid"],
}
OLD = {
    "ix_calls_acct_updated": ["account_sid", "date_updated", "sid"],
    "ix_calls_acct_called": ["account_sid", "called", "date_updated"],
    "ix_calls_acct_caller": ["account_sid", "caller", "date_updated"],
    "ix_calls_acct_status": ["account_sid", "status", "date_updated"],
    "ix_calls_acct_start": ["account_sid", "start_time"],
}


def _where(cond: str) -> dict[str, object]:
    return {"sqlite_where": sa.text(cond), "postgresql_where": sa.text(cond)}


def upgrade() -> None:
    for name, cols in LISTS.items():
        op.drop_index(name, table_name="calls")
        op.create_index(name, "calls", cols, **_where(TOP))  # type: ignore[arg-type]
    op.drop_index("ix_calls_parent", table_name="calls")
    op.create_index("ix_calls_parent", "calls", ["parent_sid"], **_where("parent_sid IS NOT NULL"))  # type: ignore[arg-type]


def downgrade() -> None:
    for name, cols in OLD.items():
        op.drop_index(name, table_name="calls")
        op.create_index(name, "calls", cols)
    op.drop_index("ix_calls_parent", table_name="calls")
    op.create_index("ix_calls_parent", "calls", ["parent_sid"])
