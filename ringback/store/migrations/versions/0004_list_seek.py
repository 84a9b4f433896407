"""Call lists that stay fast for every filter: covering list indexes, a lag-exception index, and
more day counts.

* The list indexes carry status and start_time after (date_updated, sid), so a walk in list order
  that filters on them never reads the table. Both columns only change in updates that also set
  date_updated, so the wider entries cost nothing extra on updates.
* ix_calls_acct_start is dropped: StartTime filters now walk the DateUpdated order inside a bounded
  window (a started call is normally updated within an hour of its StartTime:
  ringback.store.listing.LAG), and the rare rows outside that bound are kept in the small partial index
  ix_calls_acct_lag. A row only enters it when its lag predicate holds, so it costs a normal
  write one expression evaluation. The dropped index was rewritten on every call update (it
  ended in date_updated).
* Counts gain Status by StartTime day, so that Status+StartTime totals need no scan either, and
  counts by DateUpdated day (all calls, and by status) so that a deep page starts its walk at
  the right day.
* The update trigger bumps a dimension only when its value changed (it used to on any change of
  its columns), so the extra dimensions cost an update little.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TOP = "parent_sid IS NULL"
TAIL = ["date_updated", "sid", "status", "start_time"]
LISTS = {
    "ix_calls_acct_updated": ["account_sid", *TAIL],
    "ix_calls_acct_called": ["account_sid", "called", *TAIL],
    "ix_calls_acct_caller": ["account_sid", "caller", *TAIL],
    "ix_calls_acct_status": ["account_sid", "status", "date_updated", "sid", "start_time"],
}
OLD_LISTS = {
    "ix_calls_acct_updated": ["account_sid", "date_updated", "sid"],
    "ix_calls_acct_called": ["account_sid", "called", "date_updated", "sid"],
    "ix_calls_acct_caller": ["account_sid", "caller", "date_updated", "sid"],
    "ix_calls_acct_status": ["account_sid", "status", "date_updated", "sid"],
}
# A started call updated before its StartTime or more than an hour after it. The query side
# (ringback.store.listing) repeats these texts exactly: that is how both planners match a
# partial index. SQLite keeps datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' text, which compares in
# time order; datetime() drops the fraction, so its bound errs towards listing a row here.
LAG_SQLITE = "(date_updated < start_time OR date_updated > datetime(start_time, '+1 hours'))"
LAG_PG = "(date_updated < start_time OR date_updated - start_time > interval '1 hour')"

_DAY_SQ = "substr({r}.start_time, 1, 10)"
_DAY_PG = "to_char({r}.start_time AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
_UDAY_SQ = "substr({r}.date_updated, 1, 10)"
_UDAY_PG = "to_char({r}.date_updated AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
_STATUS_SQ = "CAST({r}.status AS TEXT)"
_STATUS_PG = "{r}.status::text"


def _pair(a: str, b: str) -> str:
    return f"{a} || '|' || {b}"


# (dim, SQLite expression, PostgreSQL expression, columns it depends on, only when set)
Dim = tuple[str, str, str, tuple[str, ...], str | None]
OLD_DIMS: list[Dim] = [
    ("status", _STATUS_SQ, _STATUS_PG, ("status",), None),
    ("called", "{r}.called", "{r}.called", ("called",), None),
    ("caller", "{r}.caller", "{r}.caller", ("caller",), None),
    ("day", _DAY_SQ, _DAY_PG, ("start_time",), "start_time"),
]
# Only low-cardinality pairs: Called and Caller pairs would cost every call a counts row or two
# more upserts per write; their combinations are counted on their index (few rows) or narrowed
# away when every call has the number (ringback.store.listing.narrowed).
PAIRS: list[Dim] = [
    ("status_day", _pair(_STATUS_SQ, _DAY_SQ), _pair(_STATUS_PG, _DAY_PG), ("status", "start_time"), "start_time"),
    # By DateUpdated day (the list order): how a deep page finds the day it starts in.
    ("uday", _UDAY_SQ, _UDAY_PG, ("date_updated",), None),
    ("status_uday", _pair(_STATUS_SQ, _UDAY_SQ), _pair(_STATUS_PG, _UDAY_PG), ("status", "date_updated"), None),
]
OLD_UPDATE_OF = "status, called, caller, start_time"
# Every call update sets date_updated: the trigger fires on each, and bumps a dimension only when
# its value changed (a DateUpdated day changes at most once a day per call).
UPDATE_OF = "status, called, caller, start_time, date_updated"


def _sqlite_bump(r: str, dim: str, expr: str, delta: int, where: str = "1") -> str:
    return (
        f"INSERT INTO counts (account_sid, resource, dim, value, n) "
        f"SELECT {r}.account_sid, 'calls', '{dim}', {expr}, {delta} WHERE {where} "
        f"ON CONFLICT (account_sid, resource, dim, value) DO UPDATE SET n = n + ({delta});"
    )


def _sqlite_triggers(dims: list[Dim], update_of: str, by_value: bool) -> None:
    for name in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS calls_counts_{name}")
    for op_name, r, delta in (("INSERT", "NEW", 1), ("DELETE", "OLD", -1)):
        body = [_sqlite_bump(r, "all", "''", delta)]
        for dim, expr, _pg, _cols, nullable in dims:
            where = f"{r}.{nullable} IS NOT NULL" if nullable else "1"
            body.append(_sqlite_bump(r, dim, expr.format(r=r), delta, where))
        op.execute(
            f"CREATE TRIGGER calls_counts_{op_name.lower()} AFTER {op_name} ON calls "
            f"WHEN {r}.parent_sid IS NULL BEGIN {' '.join(body)} END"
        )
    body = []
    for dim, expr, _pg, cols, nullable in dims:
        changed = "(" + " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in cols) + ")"
        if by_value:
            changed = f"({expr.format(r='OLD')}) IS NOT ({expr.format(r='NEW')})"
        for r, delta in (("OLD", -1), ("NEW", 1)):
            where = changed + (f" AND {r}.{nullable} IS NOT NULL" if nullable else "")
            body.append(_sqlite_bump(r, dim, expr.format(r=r), delta, where))
    op.execute(
        f"CREATE TRIGGER calls_counts_update AFTER UPDATE OF {update_of} ON calls "
        f"WHEN NEW.parent_sid IS NULL BEGIN {' '.join(body)} END"
    )


def _pg_function(dims: list[Dim], by_value: bool) -> None:
    ins = ["PERFORM ringback_count_bump(NEW.account_sid, 'all', '', 1);"]
    dele = ["PERFORM ringback_count_bump(OLD.account_sid, 'all', '', -1);"]
    upd = []
    for dim, _sq, expr, cols, nullable in dims:
        n_expr, o_expr = expr.format(r="NEW"), expr.format(r="OLD")
        guard_n = f"IF NEW.{nullable} IS NOT NULL THEN " if nullable else ""
        guard_o = f"IF OLD.{nullable} IS NOT NULL THEN " if nullable else ""
        end = " END IF;" if nullable else ""
        changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in cols)
        if by_value:
            changed = f"({o_expr}) IS DISTINCT FROM ({n_expr})"
        ins.append(f"{guard_n}PERFORM ringback_count_bump(NEW.account_sid, '{dim}', {n_expr}, 1);{end}")
        dele.append(f"{guard_o}PERFORM ringback_count_bump(OLD.account_sid, '{dim}', {o_expr}, -1);{end}")
        upd.append(
            f"IF {changed} THEN "
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


def _backfill(pg: bool) -> None:
    for dim, sq, pgx, _cols, needs in PAIRS:
        expr = (pgx if pg else sq).format(r="calls")
        cond = f" AND {needs} IS NOT NULL" if needs else ""
        op.execute(
            "INSERT INTO counts (account_sid, resource, dim, value, n) "
            f"SELECT account_sid, 'calls', '{dim}', {expr}, count(*) FROM calls "
            f"WHERE parent_sid IS NULL{cond} GROUP BY 1, 4"
        )


def _where(cond: str) -> dict[str, object]:
    return {"sqlite_where": sa.text(cond), "postgresql_where": sa.text(cond)}


def upgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    if pg:
        # Writers committing between the new trigger and the backfill would be counted twice.
        op.execute("LOCK TABLE calls IN SHARE MODE")
    for name, cols in LISTS.items():
        op.drop_index(name, table_name="calls")
        op.create_index(name, "calls", cols, **_where(TOP))  # type: ignore[arg-type]
    op.drop_index("ix_calls_acct_start", table_name="calls")
    lag = f"{TOP} AND {LAG_PG if pg else LAG_SQLITE}"
    op.create_index("ix_calls_acct_lag", "calls", ["account_sid", "date_updated", "sid", "status", "start_time"],
                    **_where(lag))  # type: ignore[arg-type]
    if pg:
        _pg_function(OLD_DIMS + PAIRS, by_value=True)
    else:
        _sqlite_triggers(OLD_DIMS + PAIRS, UPDATE_OF, by_value=True)
    _backfill(pg)


def downgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    if pg:
        _pg_function(OLD_DIMS, by_value=False)
    else:
        _sqlite_triggers(OLD_DIMS, OLD_UPDATE_OF, by_value=False)
    names = ", ".join(f"'{d[0]}'" for d in PAIRS)
    op.execute(f"DELETE FROM counts WHERE resource = 'calls' AND dim IN ({names})")
    op.drop_index("ix_calls_acct_lag", table_name="calls")
    for name, cols in OLD_LISTS.items():
        op.drop_index(name, table_name="calls")
        op.create_index(name, "calls", cols, **_where(TOP))  # type: ignore[arg-type]
    op.create_index("ix_calls_acct_start", "calls", ["account_sid", "start_time", "date_updated", "sid"],
                    **_where(TOP))  # type: ignore[arg-type]
