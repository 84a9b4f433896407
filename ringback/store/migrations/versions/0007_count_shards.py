"""Count rows sharded per PostgreSQL connection, so the API and the engine never wait on each other.

A new call's INSERT bumps the account's ('status', '0') count; the engine's dialing mark moves it
to ('status', '1'). Both touched the same rows, so the API's insert waited, row-locked, for the
engine's transaction to commit (seen as "INSERT waiting" under load: POST /Calls p99 over 100 ms).
Each count is now kept in up to SHARDS rows, chosen by the writing connection's backend pid, and
readers add them up. SQLite has one writer at a time and keeps shard 0: its triggers are unchanged,
and a unique index on the old key keeps their ON CONFLICT target valid.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SHARDS = 8

_SQLITE_TABLE = """
CREATE TABLE counts_new (
    account_sid VARCHAR(34) NOT NULL,
    resource VARCHAR(16) NOT NULL,
    dim VARCHAR(16) NOT NULL,
    value VARCHAR(32) NOT NULL,
    shard SMALLINT NOT NULL DEFAULT 0,
    n INTEGER NOT NULL,
    PRIMARY KEY (account_sid, resource, dim, value, shard)
)
"""


def _sqlite_recreate(new_table: str, columns: str, select_columns: str) -> None:
    # SQLite's way to change a primary key: a new table, the rows copied, the old one dropped. The
    # rename must not re-check the calls triggers, which name `counts` while it does not exist.
    op.execute(new_table)
    op.execute(f"INSERT INTO counts_new ({columns}) SELECT {select_columns} FROM counts")
    op.execute("DROP TABLE counts")
    op.execute("PRAGMA legacy_alter_table = ON")
    op.execute("ALTER TABLE counts_new RENAME TO counts")
    op.execute("PRAGMA legacy_alter_table = OFF")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE counts ADD COLUMN shard SMALLINT NOT NULL DEFAULT 0")
        op.execute("ALTER TABLE counts DROP CONSTRAINT counts_pkey")
        op.execute("ALTER TABLE counts ADD PRIMARY KEY (account_sid, resource, dim, value, shard)")
        op.execute(
            f"""
            CREATE OR REPLACE FUNCTION ringback_count_bump(acct text, d text, v text, delta integer)
            RETURNS void LANGUAGE sql AS $$
              INSERT INTO counts (account_sid, resource, dim, value, shard, n)
              VALUES (acct, 'calls', d, v, pg_backend_pid() % {SHARDS}, delta)
              ON CONFLICT (account_sid, resource, dim, value, shard) DO UPDATE SET n = counts.n + delta;
            $$;
            """
        )
        return
    _sqlite_recreate(_SQLITE_TABLE, "account_sid, resource, dim, value, shard, n",
                     "account_sid, resource, dim, value, 0, n")
    op.execute("CREATE UNIQUE INDEX ux_counts_key ON counts (account_sid, resource, dim, value)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE OR REPLACE FUNCTION ringback_count_bump(acct text, d text, v text, delta integer)
            RETURNS void LANGUAGE sql AS $$
              INSERT INTO counts (account_sid, resource, dim, value, n) VALUES (acct, 'calls', d, v, delta)
              ON CONFLICT (account_sid, resource, dim, value) DO UPDATE SET n = counts.n + delta;
            $$;
            """
        )
        op.execute("LOCK TABLE counts IN EXCLUSIVE MODE")
        op.execute(
            "CREATE TEMP TABLE counts_merged ON COMMIT DROP AS SELECT account_sid, resource, dim, value, "
            "sum(n)::integer AS n FROM counts GROUP BY 1, 2, 3, 4"
        )
        op.execute("DELETE FROM counts")
        op.execute("ALTER TABLE counts DROP CONSTRAINT counts_pkey")
        op.execute("ALTER TABLE counts DROP COLUMN shard")
        op.execute("ALTER TABLE counts ADD PRIMARY KEY (account_sid, resource, dim, value)")
        op.execute("INSERT INTO counts SELECT account_sid, resource, dim, value, n FROM counts_merged")
        return
    op.execute("DROP INDEX IF EXISTS ux_counts_key")
    _sqlite_recreate(
        """
        CREATE TABLE counts_new (
            account_sid VARCHAR(34) NOT NULL,
            resource VARCHAR(16) NOT NULL,
            dim VARCHAR(16) NOT NULL,
            value VARCHAR(32) NOT NULL,
            n INTEGER NOT NULL,
            PRIMARY KEY (account_sid, resource, dim, value)
        )
        """,
        "account_sid, resource, dim, value, n",
        "account_sid, resource, dim, value, n",
    )
