"""Maintained call counts: triggers keep the counts table in step with calls.

List totals (`total`, `numpages`) then need no scan of a million-row table. Triggers, rather
than application code, so that every writer (API, engine, other nodes) keeps them right.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# (dim, SQLite expression, PostgreSQL expression) with {r} = OLD or NEW.
_DIMS = [
    ("status", "CAST({r}.status AS TEXT)", "{r}.status::text", None),
    ("called", "{r}.called", "{r}.called", None),
    ("caller", "{r}.caller", "{r}.caller", None),
    ("day", "substr({r}.start_time, 1, 10)", "to_char({r}.start_time AT TIME ZONE 'UTC', 'YYYY-MM-DD')", "start_time"),
]


def _sqlite_bump(r: str, dim: str, expr: str, delta: int, where: str = "1") -> str:
    return (
        f"INSERT INTO counts (account_sid, resource, dim, value, n) "
        f"SELECT {r}.account_sid, 'calls', '{dim}', {expr}, {delta} WHERE {where} "
        f"ON CONFLICT (account_sid, resource, dim, value) DO UPDATE SET n = n + ({delta});"
    )


def _sqlite_upgrade() -> None:
    for op_name, r, delta in (("INSERT", "NEW", 1), ("DELETE", "OLD", -1)):
        body = [_sqlite_bump(r, "all", "''", delta)]
        for dim, expr, _pg, nullable in _DIMS:
            where = f"{r}.{nullable} IS NOT NULL" if nullable else "1"
            body.append(_sqlite_bump(r, dim, expr.format(r=r), delta, where))
        op.execute(
            f"CREATE TRIGGER calls_counts_{op_name.lower()} AFTER {op_name} ON calls "
            f"WHEN {r}.parent_sid IS NULL BEGIN {' '.join(body)} END"
        )
    body = []
    for dim, expr, _pg, nullable in _DIMS:
        col = nullable or dim
        for r, delta in (("OLD", -1), ("NEW", 1)):
            where = f"OLD.{col} IS NOT NEW.{col}" + (f" AND {r}.{nullable} IS NOT NULL" if nullable else "")
            body.append(_sqlite_bump(r, dim, expr.format(r=r), delta, where))
    op.execute(
        "CREATE TRIGGER calls_counts_update AFTER UPDATE OF status, called, caller, start_time ON calls "
        f"WHEN NEW.parent_sid IS NULL BEGIN {' '.join(body)} END"
    )


def _pg_upgrade() -> None:
    op.execute(
        """
        CREATE OR REPLACE FUNCTION ringback_count_bump(acct text, d text, v text, delta integer)
        RETURNS void LANGUAGE sql AS $$
          INSERT INTO counts (account_sid, resource, dim, value, n) VALUES (acct, 'calls', d, v, delta)
          ON CONFLICT (account_sid, resource, dim, value) DO UPDATE SET n = counts.n + delta;
        $$;
        """
    )
    ins = ["PERFORM ringback_count_bump(NEW.account_sid, 'all', '', 1);"]
    dele = ["PERFORM ringback_count_bump(OLD.account_sid, 'all', '', -1);"]
    upd = []
    for dim, _sq, expr, nullable in _DIMS:
        col = nullable or dim
        n_expr, o_expr = expr.format(r="NEW"), expr.format(r="OLD")
        guard_n = f"IF NEW.{nullable} IS NOT NULL THEN " if nullable else ""
        guard_o = f"IF OLD.{nullable} IS NOT NULL THEN " if nullable else ""
        end = " END IF;" if nullable else ""
        ins.append(f"{guard_n}PERFORM ringback_count_bump(NEW.account_sid, '{dim}', {n_expr}, 1);{end}")
        dele.append(f"{guard_o}PERFORM ringback_count_bump(OLD.account_sid, '{dim}', {o_expr}, -1);{end}")
        upd.append(
            f"IF OLD.{col} IS DISTINCT FROM NEW.{col} THEN "
            f"{guard_o}PERFORM ringback_count_bump(OLD.account_sid, '{dim}', {o_expr}, -1);{end} "
            f"{guard_n}PERFORM ringback_count_bump(NEW.account_sid, '{dim}', {n_expr}, 1);{end} END IF;"
        )
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION ringback_calls_counts() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'INSERT' THEN
            IF NEW.parent_sid IS NULL THEN {' '.join(ins)} END IF;
            RETURN NEW;
          ELSIF TG_OP = 'DELETE' THEN
            IF OLD.parent_sid IS NULL THEN {' '.join(dele)} END IF;
            RETURN OLD;
          ELSE
            IF NEW.parent_sid IS NULL THEN {' '.join(upd)} END IF;
            RETURN NEW;
          END IF;
        END;
        $$;
        """
    )
    op.execute(
        "CREATE TRIGGER calls_counts AFTER INSERT OR UPDATE OR DELETE ON calls "
        "FOR EACH ROW EXECUTE FUNCTION ringback_calls_counts()"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _pg_upgrade()
    else:
        _sqlite_upgrade()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS calls_counts ON calls")
        op.execute("DROP FUNCTION IF EXISTS ringback_calls_counts()")
        op.execute("DROP FUNCTION IF EXISTS ringback_count_bump(text, text, text, integer)")
    else:
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS calls_counts_{name}")
