"""The engine's per-call statements on the raw cursor (store/hot.py), on both backends: the same
results as through SQLAlchemy, in the session's transaction, and seen by the writer as writes."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ringback.sids import new_sid
from ringback.store import Store, queue
from ringback.store.accounts import create_account
from ringback.store.hot import HotStatement
from ringback.store.models import Call, utcnow


def _queue_calls(store: Store, acct: str, n: int, start: datetime) -> list[str]:
    sids = [new_sid("CA") for _ in range(n)]
    with store.session() as s:
        for i, sid in enumerate(sids):
            t = start + timedelta(seconds=i)
            s.add(Call(sid=sid, account_sid=acct, called="4155551212", caller="5005551000", status=0,
                       state="queued", flags=2, url=f"http://app/{i}", method="GET", timeout=30 + i,
                       send_digits="1w2" if i == 0 else None, date_created=t, date_updated=t))
    return sids


def test_claim_returns_the_row_once_and_updates_land_with_their_types(store: Store) -> None:
    acct, _ = create_account(store)
    # Older than any other test's queued calls: the oldest-first poll must list these first.
    sids = _queue_calls(store, acct, 3, datetime(2001, 1, 1, tzinfo=UTC))
    with store.session() as s:
        assert queue.queued_candidates(s, 3) == [(sid, acct) for sid in sids]
        row = queue.claim_row(s, sids[0], "node-x")
        assert row == (sids[0], acct, "5005551000", "4155551212", "http://app/0", "GET", "1w2", None, 30, 2)
        assert queue.claim_row(s, sids[0], "node-y") is None  # claimed once, by one node
        started = queue.mark_dialing(s, sids[0])
        ended = started + timedelta(seconds=42, milliseconds=600)
        queue.finalize(s, sids[0], status=2, dial_status="answered", sip_code=200,
                       answered_at=started + timedelta(seconds=2), ended_at=ended)
        assert (sids[0], acct) not in queue.queued_candidates(s, 64)
    with store.session(readonly=True) as s:
        call = s.get(Call, sids[0])
        assert call is not None
        assert (call.state, call.status, call.claimed_by, call.dial_status, call.sip_response_code) == (
            "ended", 2, "node-x", "answered", 200)
        # UTCDateTime's bind processing ran: aware UTC in, the same instant out on both backends.
        assert call.start_time == started and call.start_time.tzinfo is not None
        assert call.end_time == ended and call.date_updated == ended
        assert call.duration == 41  # from the answer, rounded


def test_hot_writes_roll_back_with_their_transaction(store: Store) -> None:
    acct, _ = create_account(store)
    (sid,) = _queue_calls(store, acct, 1, utcnow())
    with pytest.raises(RuntimeError), store.session() as s:
        assert queue.claim_row(s, sid, "node-x") is not None
        raise RuntimeError("the transaction fails after the claim")
    with store.session(readonly=True) as s:
        assert s.scalar(select(Call.state).where(Call.sid == sid)) == "queued"


async def test_the_writer_sees_a_failed_jobs_hot_write(store: Store) -> None:
    """A job that wrote on the raw cursor, then failed, must not commit with its batch."""
    acct, _ = create_account(store)
    good, bad = _queue_calls(store, acct, 2, utcnow())
    gate = threading.Event()
    store.writer.submit(lambda s: gate.wait(5))

    def failing(s: Session) -> None:
        queue.mark_dialing(s, bad)
        raise ValueError("after writing")

    f1 = asyncio.ensure_future(store.write(lambda s: queue.mark_dialing(s, good)))
    f2 = asyncio.ensure_future(store.write(failing))
    await asyncio.sleep(0.02)
    gate.set()
    await f1
    with pytest.raises(ValueError):
        await f2
    with store.session(readonly=True) as s:
        states = dict(s.execute(select(Call.sid, Call.state).where(Call.sid.in_([good, bad]))).all())
    assert states == {good: "dialing", bad: "queued"}


def test_statements_it_cannot_run_faithfully_are_refused(store: Store) -> None:
    acct, _ = create_account(store)
    with store.session(readonly=True) as s:
        with pytest.raises(ValueError, match="expanding"):
            HotStatement(select(Call.sid).where(Call.sid.in_(["a", "b"]))).execute(s, {})
        with pytest.raises(ValueError, match="conversion"):
            HotStatement(select(Call.date_created).where(Call.account_sid == acct)).execute(s, {})
    with store.session() as s:
        stmt = HotStatement(update(Call).where(Call.account_sid == acct).values(state="ended"))
        assert stmt.execute(s, {}).rowcount == 0  # a literal-only statement needs no parameters
