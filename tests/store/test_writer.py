"""The group-commit writer: batches share a commit, a failing job leaves nothing, results wait for
the commit. Runs on both backends (store fixture)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from ringback.sids import new_sid
from ringback.store import Store
from ringback.store.accounts import create_account
from ringback.store.counts import rebuild_counts, triggers_disabled
from ringback.store.models import Call, Count


def _insert(acct: str, sid: str):  # type: ignore[no-untyped-def]
    def job(s: Session) -> str:
        s.execute(Call.__table__.insert(), dict(sid=sid, account_sid=acct, called="4155551212",
                                                caller="4158675309"))
        return sid

    return job


def _rows(store: Store, acct: str) -> set[str]:
    with store.session(readonly=True) as s:
        return set(s.scalars(select(Call.sid).where(Call.account_sid == acct)))


async def test_concurrent_writes_share_commits_and_are_visible_when_awaited(store: Store) -> None:
    acct, _ = create_account(store)
    writer = store.writer
    jobs0, commits0 = writer.jobs, writer.commits
    gate = threading.Event()
    # Hold the writer thread on a first job so the next 50 queue up and must share commits.
    first = writer.submit(lambda s: gate.wait(5))
    sids = [new_sid("CA") for _ in range(50)]
    futs = [asyncio.ensure_future(store.write(_insert(acct, sid))) for sid in sids]
    await asyncio.sleep(0.05)
    assert not any(f.done() for f in futs)  # nothing is reported before its commit
    gate.set()
    assert await asyncio.gather(*futs) == sids
    assert first.result(5) is True
    assert _rows(store, acct) == set(sids)  # every awaited write is committed and visible to others
    assert writer.jobs - jobs0 == 51
    assert writer.commits - commits0 <= 3  # 51 writes, a handful of commits


async def test_a_failing_job_leaves_no_row_and_spares_its_batch(store: Store) -> None:
    acct, _ = create_account(store)
    gate = threading.Event()
    store.writer.submit(lambda s: gate.wait(5))
    good1, bad, good2 = new_sid("CA"), new_sid("CA"), new_sid("CA")

    def failing(s: Session) -> None:
        _insert(acct, bad)(s)  # the row is written, then the job fails: it must not survive
        raise ValueError("rejected")

    f1 = asyncio.ensure_future(store.write(_insert(acct, good1)))
    f2 = asyncio.ensure_future(store.write(failing))
    f3 = asyncio.ensure_future(store.write(_insert(acct, good2)))
    await asyncio.sleep(0.02)
    gate.set()
    assert await f1 == good1
    with pytest.raises(ValueError, match="rejected"):
        await f2
    assert await f3 == good2
    assert _rows(store, acct) == {good1, good2}
    with store.session(readonly=True) as s:
        n = s.scalar(select(func.sum(Count.n)).where(Count.account_sid == acct, Count.dim == "all"))
    assert n == 2  # the count triggers of the rolled-back row were rolled back with it


async def test_a_failed_commit_reruns_each_job_alone(store: Store) -> None:
    acct, _ = create_account(store)
    gate = threading.Event()
    store.writer.submit(lambda s: gate.wait(5))
    ok, dup = new_sid("CA"), new_sid("CA")
    with store.session() as s:
        s.add(Call(sid=dup, account_sid=acct, called="4155551212", caller="4158675309"))
    f1 = asyncio.ensure_future(store.write(_insert(acct, ok)))
    f2 = asyncio.ensure_future(store.write(_insert(acct, dup)))  # primary key violation
    await asyncio.sleep(0.02)
    gate.set()
    assert await f1 == ok
    with pytest.raises(Exception):  # noqa: B017 - the driver's IntegrityError
        await f2
    assert _rows(store, acct) == {ok, dup}


def test_rebuild_counts_matches_a_bulk_load(store: Store) -> None:
    acct, _ = create_account(store)
    with triggers_disabled(store), store.engine.begin() as conn:
        conn.execute(Call.__table__.insert(), [
            dict(sid=new_sid("CA"), account_sid=acct, called=f"41555512{i % 3:02d}", caller="4158675309",
                 status=i % 2 + 2) for i in range(30)])
    with store.session(readonly=True) as s:
        assert not s.scalar(select(func.sum(Count.n)).where(Count.account_sid == acct, Count.dim == "all"))
    rebuild_counts(store)
    with store.session(readonly=True) as s:
        got = {(d, v): n for d, v, n in s.execute(select(Count.dim, Count.value, func.sum(Count.n)).where(Count.account_sid == acct).group_by(Count.dim, Count.value))}
        assert s.scalar(select(func.count()).select_from(Call).where(Call.account_sid == acct)) == 30
    assert got[("all", "")] == 30
    assert got[("status", "2")] == 15 and got[("status", "3")] == 15
    assert got[("called", "4155551200")] == 10
    # The triggers are back: a new row is counted.
    with store.session() as s:
        s.add(Call(sid=new_sid("CA"), account_sid=acct, called="4155551200", caller="4158675309"))
    with store.session(readonly=True) as s:
        assert s.scalar(select(func.sum(Count.n)).where(Count.account_sid == acct, Count.dim == "all")) == 31


async def test_a_job_rejected_before_writing_does_not_disturb_its_batch(store: Store) -> None:
    acct, _ = create_account(store)
    gate = threading.Event()
    store.writer.submit(lambda s: gate.wait(5))
    runs: list[str] = []
    sids = [new_sid("CA") for _ in range(4)]

    def counted(sid: str):  # type: ignore[no-untyped-def]
        def job(s: Session) -> str:
            runs.append(sid)
            return _insert(acct, sid)(s)

        return job

    def rejected(s: Session) -> None:
        s.scalar(select(func.count()).select_from(Call).where(Call.account_sid == acct))  # reads only
        raise LookupError("21210")

    commits0 = store.writer.commits
    futs = [asyncio.ensure_future(store.write(counted(sids[0]))), asyncio.ensure_future(store.write(rejected)),
            *(asyncio.ensure_future(store.write(counted(sid))) for sid in sids[1:])]
    await asyncio.sleep(0.02)
    gate.set()
    results = await asyncio.gather(*futs, return_exceptions=True)
    assert isinstance(results[1], LookupError)
    assert [r for i, r in enumerate(results) if i != 1] == sids
    assert runs == sids  # each ran once: no rollback and re-run of the batch
    assert store.writer.commits - commits0 <= 2
    assert _rows(store, acct) == set(sids)


async def test_the_writer_reconnects_after_its_connection_dies(store: Store) -> None:
    """The writer holds one connection between batches; when the server drops it (a restart),
    at most the write in flight fails and the next ones go through on a new connection."""
    if store.dialect != "postgresql":
        pytest.skip("a SQLite connection cannot be killed from outside")
    import psycopg

    from tests.support.pg import PG_ADMIN

    acct, _ = create_account(store)
    pid = await store.write(lambda s: s.execute(text("SELECT pg_backend_pid()")).scalar())
    assert pid == await store.write(lambda s: s.execute(text("SELECT pg_backend_pid()")).scalar())  # held
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    sid = new_sid("CA")
    try:
        await store.write(_insert(acct, sid))
    except Exception:  # noqa: BLE001 - the write that met the dead connection may fail, once
        sid = new_sid("CA")
        await store.write(_insert(acct, sid))
    assert sid in _rows(store, acct)
    assert await store.write(lambda s: s.execute(text("SELECT pg_backend_pid()")).scalar()) != pid
