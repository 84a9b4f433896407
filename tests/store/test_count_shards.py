"""Count shards (migration 0007): the API's insert and the engine's status change bump the same
count from two connections without waiting on each other (PostgreSQL), totals stay exact, and
the migration keeps the counts it finds, both ways, on both backends."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import func, select

from ringback.sids import new_sid
from ringback.store import Store
from ringback.store.accounts import create_account
from ringback.store.migrate import downgrade, upgrade
from ringback.store.models import Call, Count
from tests.support.pg import pg_schema


def _queued(acct: str, sid: str) -> dict[str, object]:
    return dict(sid=sid, account_sid=acct, called="4155551212", caller="4158675309", status=0, state="queued")


def _status_count(store: Store, acct: str, status: int) -> int:
    with store.session(readonly=True) as s:
        return int(s.scalar(select(func.coalesce(func.sum(Count.n), 0)).where(
            Count.account_sid == acct, Count.dim == "status", Count.value == str(status))) or 0)


def test_an_insert_does_not_wait_for_another_connections_status_change() -> None:
    with pg_schema("rb_shards") as url:
        store = Store(url)
        try:
            acct, _ = create_account(store)
            first = new_sid("CA")
            with store.session() as s:
                s.execute(Call.__table__.insert(), _queued(acct, first))
            dsn = url.replace("postgresql+psycopg://", "postgresql://")
            # Two connections whose backend pids fall in different shards (as the API's and the
            # engine's writers do, unless they happen to share one: then they wait, as before).
            conns = [psycopg.connect(dsn) for _ in range(9)]
            try:
                shard = {c: c.info.backend_pid % 8 for c in conns}
                engine = conns[0]
                api = next(c for c in conns[1:] if shard[c] != shard[engine])
                engine.execute("UPDATE calls SET status = 1, state = 'dialing' WHERE sid = %s", (first,))
                api.execute("SET lock_timeout = '1s'")  # a wait on the engine's rows would fail here
                api.execute(
                    "INSERT INTO calls (sid, account_sid, called, caller, status, state, flags, method, timeout, "
                    "date_created, date_updated) VALUES (%s, %s, '4155551212', '4158675309', 0, 'queued', 2, "
                    "'POST', 60, now(), now())",
                    (new_sid("CA"), acct),
                )
                api.commit()
                engine.commit()
                api_shard, engine_shard = shard[api], shard[engine]
            finally:
                for c in conns:
                    c.close()
            assert _status_count(store, acct, 0) == 1 and _status_count(store, acct, 1) == 1
            with store.session(readonly=True) as s:  # each connection bumped a row of its own
                by_shard = dict(s.execute(select(Count.shard, Count.n).where(
                    Count.account_sid == acct, Count.dim == "status", Count.value == "0")).all())
            assert by_shard[api_shard] >= 1 and by_shard[engine_shard] <= 0
        finally:
            store.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "pg"])
def test_the_migration_keeps_counts_both_ways(backend: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    def check(url: str) -> None:
        store = Store(url)
        acct, _ = create_account(store)
        with store.session() as s:
            for i in range(5):
                s.execute(Call.__table__.insert(), {**_queued(acct, new_sid("CA")), "status": i % 2})
        store.dispose()
        downgrade(url, "0006")
        with Store(url, migrate=False).engine.connect() as conn:  # one row per count again
            got = dict(conn.exec_driver_sql(
                f"SELECT value, n FROM counts WHERE account_sid = '{acct}' AND dim = 'status'").all())
        assert got == {"0": 3, "1": 2}
        upgrade(url)
        store = Store(url)
        assert (_status_count(store, acct, 0), _status_count(store, acct, 1)) == (3, 2)
        with store.session() as s:  # and the triggers still count after the round trip
            s.execute(Call.__table__.insert(), _queued(acct, new_sid("CA")))
        assert _status_count(store, acct, 0) == 4
        store.dispose()

    if backend == "sqlite":
        check(f"sqlite:///{tmp_path}/shards.db")
    else:
        with pg_schema("rb_shards_mig") as url:
            check(url)
