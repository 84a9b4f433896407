"""Reading the call list (GET /Calls): its total and the keys of one page, in list order (newest
DateUpdated first, then Sid), without scanning a million-row table.

Totals come from the maintained counts (single filters, StartTime days, Status by StartTime
day), else from one count on an index (Called and Caller combinations: a number's calls).

Page keys are read from an index in list order. A StartTime filter is not in that order, but a
started call's DateUpdated is normally within LAG after its StartTime (it is set when dialling
starts and moves with each later step of the call), so the matches of a StartTime range
[lo, hi) lie in the DateUpdated window [lo, hi + LAG): the walk starts at the window's top instead
of at the newest call, and stops at its bottom. Rows outside that bound (a call longer than LAG,
a clock step between nodes, an import) are all in the small partial index ix_calls_acct_lag and
are merged in, so the result is exactly the ORDER BY ... OFFSET result.

Deep pages: with no filter or a Status filter, the walk starts at the DateUpdated day the page
falls in (found from counts kept by DateUpdated day), so it skips at most one day of calls.
Otherwise the page is read from whichever end of the list is nearer (the total is exact), which
costs at most half the matches.

Every total and page is read in one snapshot (the caller's transaction; REPEATABLE READ on
PostgreSQL), since the totals place the pages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, not_, select, text, union_all
from sqlalchemy.dialects.sqlite.base import SQLiteCompiler
from sqlalchemy.orm import Session

from .counts import PAIR_SEP
from .models import LAG_PG, LAG_SQLITE, Call, Count

LAG = timedelta(hours=1)  # the bound in LAG_SQLITE / LAG_PG (migration 0004)
# Beyond LAG: SQLite's datetime() drops fractions of a second; a minute covers any rounding.
SLACK = timedelta(minutes=1)
_INDEX = {None: "ix_calls_acct_updated", "called": "ix_calls_acct_called", "caller": "ix_calls_acct_caller",
          "status": "ix_calls_acct_status"}
_DAYS = {(): "day", ("status",): "status_day"}
_UDAYS = {(): "uday", ("status",): "status_uday"}
_LAST_DAY = "9999-12-31"
# From this offset on, reading the day counts (one row a day) beats walking the index.
SKIP_BY_DAY = 5000


class HintingSQLiteCompiler(SQLiteCompiler):
    """SQLAlchemy renders no table hints for SQLite (with_hint(..., "sqlite") is silently dropped);
    SQLite's INDEXED BY is one, and pins a list walk to the index whose order it relies on.
    Installed on each SQLite engine the store makes (db.make_engine), not on the library."""

    def get_from_hint_text(self, table: Any, text: str) -> str:
        return text


@dataclass
class CallFilter:
    """What a list asks for: equality filters (dim -> value as counted), a StartTime range, and
    any other SQL conditions (EndTime), which only a scan can count."""

    account_sid: str
    eq: dict[str, str] = field(default_factory=dict)
    started: bool = False
    lo: datetime | None = None
    hi: datetime | None = None
    extra: list[ColumnElement[bool]] = field(default_factory=list)

    @property
    def impossible(self) -> bool:
        return self.lo is not None and self.hi is not None and self.lo >= self.hi

    def where(self) -> list[ColumnElement[bool]]:
        conds: list[ColumnElement[bool]] = [Call.account_sid == self.account_sid, Call.parent_sid.is_(None)]
        for dim, value in self.eq.items():
            conds.append(Call.status == int(value) if dim == "status" else getattr(Call, dim) == value)
        if self.lo is not None:
            conds.append(Call.start_time >= self.lo)
        if self.hi is not None:
            conds.append(Call.start_time < self.hi)
        return conds + self.extra


def _count(s: Session, account_sid: str, dim: str, value: str) -> int:
    n = s.scalar(select(func.sum(Count.n)).where(Count.account_sid == account_sid, Count.resource == "calls",
                                                 Count.dim == dim, Count.value == value))
    return int(n or 0)


def _day_sum(s: Session, f: CallFilter, dim: str, prefix: str) -> int:
    q = select(func.coalesce(func.sum(Count.n), 0)).where(
        Count.account_sid == f.account_sid, Count.resource == "calls", Count.dim == dim,
        Count.value >= prefix + (f.lo.date().isoformat() if f.lo is not None else ""),
    )
    # hi is the (exclusive) start of the day after the range, so days strictly before it count.
    q = q.where(Count.value < prefix + f.hi.date().isoformat() if f.hi is not None
                else Count.value <= prefix + _LAST_DAY)
    if prefix:
        # The range is exact in byte order; under another collation the prefix test keeps it so.
        q = q.where(Count.value.startswith(prefix, autoescape=True))
    return int(s.scalar(q) or 0)


def narrowed(s: Session, f: CallFilter) -> CallFilter | None:
    """f without the equality filters that every call of the account meets (an account that calls
    from one number, or is called on one), so that more combinations are counted, walked through
    an index alone and skipped into by day; None when a filter matches no call. Exact: both
    counts are read in the list's snapshot."""
    if not f.eq:
        return f
    everything = _count(s, f.account_sid, "all", "")
    keep: dict[str, str] = {}
    for dim, value in f.eq.items():
        n = _count(s, f.account_sid, dim, value)
        if n == 0:
            return None
        if n != everything:
            keep[dim] = value
    return CallFilter(f.account_sid, keep, f.started, f.lo, f.hi, f.extra)


def total(s: Session, f: CallFilter) -> int:
    """The number of matches: from the counts table when it keeps this combination, else counted."""
    if f.impossible:
        return 0
    dims = tuple(sorted(f.eq))
    prefix = "".join(f.eq[d] + PAIR_SEP for d in dims)
    if not f.extra:
        if f.started and dims in _DAYS:
            return _day_sum(s, f, _DAYS[dims], prefix)
        if not f.started and not dims:
            return _count(s, f.account_sid, "all", "")
        if not f.started and len(dims) == 1:
            return _count(s, f.account_sid, dims[0], f.eq[dims[0]])
    stmt = select(func.count()).select_from(Call).where(*f.where())
    if s.get_bind().dialect.name == "sqlite":
        # The rarest number's calls, counted from its index alone (status and start_time are in it).
        stmt = stmt.with_hint(Call, f"INDEXED BY {_walk_index(s, f)}", "sqlite")
    return int(s.scalar(stmt) or 0)


def lag_clause(dialect: str) -> ColumnElement[bool]:
    """The partial index's own predicate text: how both planners see that it applies."""
    return text(LAG_PG if dialect == "postgresql" else LAG_SQLITE)  # type: ignore[return-value]


def _walk_index(s: Session, f: CallFilter) -> str:
    """The list index to walk: that of the rarest equality filter (by its count), else DateUpdated."""
    if not f.eq:
        return _INDEX[None]
    if len(f.eq) == 1:
        return _INDEX[next(iter(f.eq))]
    rarest = min(f.eq, key=lambda d: _count(s, f.account_sid, d, f.eq[d]))
    return _INDEX[rarest]


def _day_skip(s: Session, f: CallFilter, offset: int) -> tuple[datetime, int] | None:
    """(bound, rest): offset - rest matches have DateUpdated >= bound, and the rest are the first
    to skip below it; None when no DateUpdated day counts keep this filter."""
    dims = tuple(sorted(f.eq))
    if f.started or f.extra or dims not in _UDAYS:
        return None
    prefix = "".join(f.eq[d] + PAIR_SEP for d in dims)
    q = (select(Count.value, func.sum(Count.n))
         .where(Count.account_sid == f.account_sid, Count.resource == "calls", Count.dim == _UDAYS[dims],
                Count.value >= prefix, Count.value <= prefix + _LAST_DAY)
         .group_by(Count.value)
         .order_by(Count.value.desc()))
    if prefix:
        q = q.where(Count.value.startswith(prefix, autoescape=True))
    newer = 0
    for value, n in s.execute(q):
        if newer + n > offset:
            day = datetime.fromisoformat(value[len(prefix):]).replace(tzinfo=UTC)
            return day + timedelta(days=1), offset - newer
        newer += n
    return None


def page_keys(s: Session, f: CallFilter, offset: int, limit: int, n_total: int) -> list[str]:
    """The Sids at [offset, offset + limit) of the list, given its exact total."""
    end = min(offset + limit, n_total)
    if offset >= end:
        return []
    take = end - offset
    base = f.where()
    skip, backward = offset, False
    by_day = _day_skip(s, f, offset) if offset >= SKIP_BY_DAY else None
    if by_day is not None:
        # Start the walk at the DateUpdated day the page falls in; skip only within that day.
        bound, skip = by_day
        base.append(Call.date_updated < bound)
    elif offset > n_total - end:
        # Read from the nearer end: the same rows, ascending, from offset total - end.
        skip, backward = n_total - end, True
    dialect = s.get_bind().dialect.name
    sqlite = dialect == "sqlite"

    def ordered(stmt: Select[Any], du: Any, sid: Any) -> Select[Any]:
        return stmt.order_by(du.asc(), sid.asc()) if backward else stmt.order_by(du.desc(), sid.desc())

    if not f.started:
        stmt = ordered(select(Call.sid).where(*base), Call.date_updated, Call.sid).offset(skip).limit(take)
        if sqlite:
            stmt = stmt.with_hint(Call, f"INDEXED BY {_walk_index(s, f)}", "sqlite")
        return list(s.scalars(stmt))
    walk = select(Call.date_updated.label("du"), Call.sid.label("sid"))
    window: list[ColumnElement[bool]] = []
    if f.lo is not None:
        window.append(Call.date_updated >= f.lo)
    if f.hi is not None:
        window.append(Call.date_updated < f.hi + LAG + SLACK)
    # Two disjoint parts: the window, and the lagged rows outside it (usually none).
    normal = ordered(walk.where(*base, *window), Call.date_updated, Call.sid)
    lagged = ordered(walk.where(*base, lag_clause(dialect), not_(and_(*window))), Call.date_updated,
                     Call.sid).limit(skip + take)
    if sqlite:
        normal = normal.with_hint(Call, f"INDEXED BY {_walk_index(s, f)}", "sqlite")
        lagged = lagged.with_hint(Call, "INDEXED BY ix_calls_acct_lag", "sqlite")
    if not s.execute(lagged.limit(1)).first():
        return [row.sid for row in s.execute(normal.offset(skip).limit(take))]
    # Each part's first skip + take rows, merged in order, hold the page.
    a, b = normal.limit(skip + take).subquery(), lagged.subquery()
    both = union_all(select(a.c.du, a.c.sid), select(b.c.du, b.c.sid))
    keys = ordered(both, both.selected_columns.du, both.selected_columns.sid).offset(skip).limit(take)
    return [row.sid for row in s.execute(keys)]


def page_rows(s: Session, f: CallFilter, offset: int, limit: int, n_total: int) -> list[Call]:
    """The Calls of one page, newest DateUpdated first: keys from an index, then just those rows."""
    keys = page_keys(s, f, offset, limit, n_total)
    if not keys:
        return []
    return list(s.scalars(select(Call).where(Call.sid.in_(keys))
                          .order_by(Call.date_updated.desc(), Call.sid.desc())))
