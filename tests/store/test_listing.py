"""The call list read through ringback.store.listing equals a naive reference (filter and sort in
Python) for every filter and combination, on every page, on both databases.

The rows are built to hit the edges: ties in DateUpdated, calls straddling midnight, lags just
inside and just outside the one-hour bound (with and without fractions of a second), calls
updated days after they started or before (a clock step), unstarted calls, Segments, and
another account's calls.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from ringback.sids import new_sid
from ringback.store import Store, listing
from ringback.store.accounts import create_account
from ringback.store.counts import DIMS
from ringback.store.listing import CallFilter
from ringback.store.models import Call, Count

BASE = datetime(2009, 7, 1, tzinfo=UTC)
CALLED = ["4155550001", "4155550002", "4155550003", "+442079460958"]
CALLER = ["4155551000", "4155552000"]
N = 2500


@dataclass
class Row:
    sid: str
    called: str
    caller: str
    status: int
    start: datetime | None
    updated: datetime
    end: datetime | None


def _lag(rnd: random.Random) -> timedelta:
    kind = rnd.random()
    if kind < 0.05:
        return timedelta(seconds=rnd.randrange(3601, 4 * 86400))  # a long call, or updated much later
    if kind < 0.07:
        return -timedelta(seconds=rnd.randrange(1, 900))  # a node whose clock stepped back
    if kind < 0.10:
        # On the bound: exactly an hour, and an hour plus a little (inside the query's slack).
        return timedelta(hours=1, microseconds=rnd.choice([0, 1, 500000]), seconds=rnd.choice([0, 0, 30]))
    return timedelta(seconds=rnd.randrange(0, 3000), microseconds=rnd.randrange(1_000_000))


def make_rows(seed: int) -> list[Row]:
    rnd = random.Random(seed)
    rows: list[Row] = []
    for _ in range(N):
        start: datetime | None = BASE + timedelta(seconds=rnd.randrange(0, 6 * 86400))
        if rnd.random() < 0.03:
            # Just before midnight: DateUpdated lands on the next day.
            start = BASE + timedelta(days=rnd.randrange(6), hours=23, minutes=59, seconds=rnd.randrange(60))
        status = rnd.choice([2, 2, 2, 3, 4, 5, 1])
        if rnd.random() < 0.05:
            start, status = None, 0  # queued: never started
        updated = (start + _lag(rnd)) if start else BASE + timedelta(seconds=rnd.randrange(0, 7 * 86400))
        if rows and rnd.random() < 0.15:
            updated = rows[rnd.randrange(len(rows))].updated  # a tie in DateUpdated
        end = start + timedelta(seconds=30) if start and status == 2 else None
        rows.append(Row(new_sid("CA"), rnd.choice(CALLED), rnd.choice(CALLER), status, start, updated, end))
    return rows


def insert(store: Store, acct: str, rows: list[Row]) -> None:
    table = Call.__table__
    values = [dict(sid=r.sid, account_sid=acct, parent_sid=None, call_segment_sid=None, called=r.called,
                   caller=r.caller, status=r.status, state="ended", flags=2, method="POST", timeout=60,
                   start_time=r.start, end_time=r.end, date_created=r.updated, date_updated=r.updated)
              for r in rows]
    with store.engine.begin() as conn:
        conn.execute(table.insert(), values)  # type: ignore[attr-defined]


def reference(rows: list[Row], f: dict[str, Any]) -> list[str]:
    out = []
    for r in rows:
        if "called" in f and r.called != f["called"]:
            continue
        if "caller" in f and r.caller != f["caller"]:
            continue
        if "status" in f and r.status != int(f["status"]):
            continue
        lo, hi = f.get("lo"), f.get("hi")
        if (lo or hi) and r.start is None:
            continue
        if lo and r.start < lo:  # type: ignore[operator]
            continue
        if hi and r.start >= hi:  # type: ignore[operator]
            continue
        elo = f.get("end_lo")
        if elo and (r.end is None or r.end < elo):
            continue
        out.append(r)
    out.sort(key=lambda r: (r.updated, r.sid), reverse=True)
    return [r.sid for r in out]


def _days(day: int) -> datetime:
    return BASE + timedelta(days=day)


TIME_FILTERS: list[dict[str, Any]] = [
    {},
    {"lo": _days(2), "hi": _days(3)},  # StartTime=
    {"lo": _days(3)},  # StartTime>=
    {"hi": _days(2)},  # StartTime<=
    {"hi": _days(6)},
    {"lo": _days(1), "hi": _days(4)},  # StartTime>= and StartTime<=
    {"lo": _days(9)},  # after every call
    {"hi": _days(-1)},  # before every call
]


def combos() -> list[dict[str, Any]]:
    rnd = random.Random(11)
    out: list[dict[str, Any]] = []
    for tf in TIME_FILTERS:
        for dims in itertools.chain.from_iterable(itertools.combinations(["called", "caller", "status"], k)
                                                  for k in range(4)):
            f = dict(tf)
            for d in dims:
                f[d] = {"called": rnd.choice(CALLED), "caller": rnd.choice(CALLER),
                        "status": str(rnd.choice([0, 2, 3, 5]))}[d]
            out.append(f)
    out.append({"end_lo": _days(3)})  # EndTime>= (no index: a scan)
    out.append({"end_lo": _days(3), "status": "2", "hi": _days(5)})
    return out


def call_filter(acct: str, f: dict[str, Any]) -> CallFilter:
    cf = CallFilter(acct, eq={d: f[d] for d in ("called", "caller", "status") if d in f})
    cf.started = "lo" in f or "hi" in f
    cf.lo, cf.hi = f.get("lo"), f.get("hi")
    if "end_lo" in f:
        cf.extra.append(Call.end_time >= f["end_lo"])
    return cf


@pytest.fixture(scope="module")
def listed(store: Store) -> tuple[str, list[Row]]:
    acct, _ = create_account(store)
    other, _ = create_account(store)
    rows = make_rows(5)
    insert(store, acct, rows)
    insert(store, other, make_rows(6)[:300])  # another account: never listed
    # Segments of listed calls: never listed, never counted.
    with store.session() as s:
        for r in rows[:40]:
            s.add(Call(sid=new_sid("CA"), account_sid=acct, parent_sid=r.sid, call_segment_sid=new_sid("CA"),
                       called=r.called, caller=r.caller, status=2, start_time=r.start, date_updated=r.updated,
                       flags=6))
    # Updates and deletes through the triggers: a status change, a StartTime written, a delete.
    with store.session() as s:
        for r in rows[:300:7]:
            c = s.get(Call, r.sid)
            assert c is not None
            r.status = c.status = 5 if r.status != 5 else 3
        for r in rows[1:300:11]:
            c = s.get(Call, r.sid)
            assert c is not None
            if r.start is None:
                r.start = c.start_time = r.updated - timedelta(minutes=5)
                r.status = c.status = 1
        for r in rows[2:300:13]:
            s.delete(s.get(Call, r.sid))
    gone = {r.sid for r in rows[2:300:13]}
    return acct, [r for r in rows if r.sid not in gone]


def test_pair_counts_follow_every_write(store: Store, listed: tuple[str, list[Row]]) -> None:
    acct, rows = listed
    want: Counter[tuple[str, str]] = Counter()
    for r in rows:
        day = r.start.date().isoformat() if r.start else None
        st = str(r.status)
        want[("all", "")] += 1
        for dim, value in (("status", st), ("called", r.called), ("caller", r.caller)):
            want[(dim, value)] += 1
        uday = r.updated.date().isoformat()
        want[("uday", uday)] += 1
        want[("status_uday", f"{st}|{uday}")] += 1
        if day:
            for dim, value in (("day", day), ("status_day", f"{st}|{day}")):
                want[(dim, value)] += 1
    assert {d[0] for d in DIMS} == {k[0] for k in want}  # the rebuild knows every dimension
    with store.session(readonly=True) as s:
        got = {(d, v): n for d, v, n in s.execute(select(Count.dim, Count.value, func.sum(Count.n)).where(Count.account_sid == acct).group_by(Count.dim, Count.value)) if n}
    assert got == dict(want)


@pytest.mark.parametrize("size", [7, 50])
@pytest.mark.parametrize("by_day", [False, True], ids=["walk", "by-day"])
def test_every_filter_and_page_equals_the_reference(store: Store, listed: tuple[str, list[Row]], size: int,
                                                     by_day: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    acct, rows = listed
    # by-day: every page past the first starts from the DateUpdated day counts, as deep pages do.
    monkeypatch.setattr(listing, "SKIP_BY_DAY", 1 if by_day else 10**9)
    checked = 0
    for f in combos():
        want = reference(rows, f)
        checked += check_pages(store, call_filter(acct, f), want, size, f)
    assert checked > 200


def check_pages(store: Store, cf: CallFilter, want: list[str], size: int, f: Any) -> int:
    """Every interesting page of cf (first, middle from both sides, last, past the end) equals want's."""
    with store.session(readonly=True) as s:
        narrow = listing.narrowed(s, cf)
        total = 0 if narrow is None else listing.total(s, narrow)
    assert total == len(want), f
    npages = (total + size - 1) // size
    pages = sorted({0, 1, 2, npages // 3, npages // 2, npages // 2 + 1, npages - 2, npages - 1, npages})
    checked = 0
    for page in (p for p in pages if p >= 0):
        with store.session(readonly=True) as s:
            got = [] if narrow is None else [c.sid for c in listing.page_rows(s, narrow, page * size, size, total)]
        assert got == want[page * size:(page + 1) * size], (f, page)
        checked += 1
    return checked


def test_filters_every_call_meets_are_dropped_exactly(store: Store) -> None:
    """An account that calls from one number: Caller combinations are listed as without Caller."""
    acct, _ = create_account(store)
    rows = make_rows(8)[:400]
    for r in rows:
        r.caller = CALLER[0]
    insert(store, acct, rows)
    for f in combos():
        if "caller" in f:
            f["caller"] = CALLER[0]
            check_pages(store, call_filter(acct, f), reference(rows, f), 9, f)
            f["caller"] = CALLER[1]  # a number this account never called from: nothing
            check_pages(store, call_filter(acct, f), [], 9, f)


def test_lag_index_holds_only_the_exceptions(store: Store, listed: tuple[str, list[Row]]) -> None:
    """The partial index must stay small: only calls updated outside the hour after StartTime."""
    acct, rows = listed
    with store.session(readonly=True) as s:
        n = s.scalar(select(func.count()).select_from(Call).where(
            Call.account_sid == acct, Call.parent_sid.is_(None), listing.lag_clause(store.dialect)))
    far = sum(1 for r in rows if r.start and not (timedelta(0) <= r.updated - r.start <= timedelta(hours=1)))
    assert far <= (n or 0) <= far + sum(1 for r in rows if r.start and r.updated - r.start >= timedelta(hours=1))


def test_lag_predicate_has_one_text() -> None:
    """The planners match a partial index by its predicate text: the migration's and the queries' agree."""
    import importlib

    from ringback.store import models

    migration = importlib.import_module("ringback.store.migrations.versions.0004_list_seek")
    assert (migration.LAG_SQLITE, migration.LAG_PG) == (models.LAG_SQLITE, models.LAG_PG)
