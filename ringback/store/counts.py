"""Maintenance of the maintained call counts (the `counts` table the list totals read).

Bulk loads (benchmarks, imports) run faster with the count triggers off; `rebuild_counts` then
recomputes every call count in one pass so totals match the table exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text

from .db import Store

_STATUS_SQ, _STATUS_PG = "CAST(status AS TEXT)", "status::text"
_DAY_SQ, _DAY_PG = "substr(start_time, 1, 10)", "to_char(start_time AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
_UDAY_SQ, _UDAY_PG = "substr(date_updated, 1, 10)", "to_char(date_updated AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


def _pair(a: str, b: str) -> str:
    return f"{a} || '|' || {b}"


# (dim, SQLite expression, PostgreSQL expression, only when this column is set); the triggers of
# migrations 0002 and 0004 keep the same dimensions. A pair's value is 'a|b' (PAIR_SEP).
PAIR_SEP = "|"
DIMS: tuple[tuple[str, str, str, str | None], ...] = (
    ("all", "''", "''", None),
    ("status", _STATUS_SQ, _STATUS_PG, None),
    ("called", "called", "called", None),
    ("caller", "caller", "caller", None),
    ("day", _DAY_SQ, _DAY_PG, "start_time"),
    ("status_day", _pair(_STATUS_SQ, _DAY_SQ), _pair(_STATUS_PG, _DAY_PG), "start_time"),
    ("uday", _UDAY_SQ, _UDAY_PG, None),
    ("status_uday", _pair(_STATUS_SQ, _UDAY_SQ), _pair(_STATUS_PG, _UDAY_PG), None),
)


@contextmanager
def triggers_disabled(store: Store) -> Iterator[None]:
    """Run a bulk load without the count triggers; the caller must rebuild_counts() afterwards.

    Nothing else may write calls meanwhile (their counts would be lost until the rebuild).
    """
    if store.dialect == "postgresql":
        with store.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE calls DISABLE TRIGGER USER")
        try:
            yield
        finally:
            with store.engine.begin() as conn:
                conn.exec_driver_sql("ALTER TABLE calls ENABLE TRIGGER USER")
        return
    # SQLite cannot disable a trigger: keep their exact DDL, drop them, put them back.
    with store.engine.begin() as conn:
        saved = conn.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'calls'"
        ).all()
        for name, _ in saved:
            conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
    try:
        yield
    finally:
        with store.engine.begin() as conn:
            for _, sql in saved:
                conn.exec_driver_sql(sql)


def rebuild_counts(store: Store) -> None:
    """Recompute every call count from the calls table (one grouped scan per dimension)."""
    pg = store.dialect == "postgresql"
    with store.engine.begin() as conn:
        if pg:
            # Writers that commit during the rebuild would be double counted or lost.
            conn.exec_driver_sql("LOCK TABLE calls IN SHARE MODE")
        conn.execute(text("DELETE FROM counts WHERE resource = 'calls'"))
        for dim, sq, pgx, needs in DIMS:
            expr = pgx if pg else sq
            cond = f" AND {needs} IS NOT NULL" if needs else ""
            conn.execute(text(
                "INSERT INTO counts (account_sid, resource, dim, value, n) "
                f"SELECT account_sid, 'calls', '{dim}', {expr}, count(*) FROM calls "
                f"WHERE parent_sid IS NULL{cond} GROUP BY 1, 4"
            ))
