"""Shared pacing buckets and node heartbeats (store/cluster.py), on both backends."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from ringback.sids import new_sid
from ringback.store import Store
from ringback.store.accounts import create_account
from ringback.store.cluster import dead_nodes, forget_node, heartbeat, hold_buckets, node_rows, store_buckets
from ringback.store.models import DialPacing, Node, utcnow


def test_buckets_start_empty_and_keep_what_a_claimer_stored(store: Store) -> None:
    a, _ = create_account(store)
    b, _ = create_account(store)
    with store.session() as s:
        assert hold_buckets(s, [a, b, a]) == {a: 0.0, b: 0.0}
        store_buckets(s, {a: 1234.5})
    with store.session() as s:
        assert hold_buckets(s, [a, b]) == {a: 1234.5, b: 0.0}


def test_a_bucket_held_by_one_claimer_is_skipped_by_another_on_postgresql(store: Store) -> None:
    if store.dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time: there is no second claimer to skip")
    a, _ = create_account(store)
    b, _ = create_account(store)
    with store.session() as s:
        hold_buckets(s, [a, b])  # create the rows
    held = threading.Event()
    release = threading.Event()
    seen: dict[str, float] = {}

    def first() -> None:
        with store.session() as s:
            hold_buckets(s, [a])
            held.set()
            release.wait(10)
            store_buckets(s, {a: 99.0})

    t = threading.Thread(target=first)
    t.start()
    try:
        assert held.wait(10)
        with store.session() as s:
            seen = hold_buckets(s, [a, b])
    finally:
        release.set()
        t.join()
    assert seen == {b: 0.0}, "the bucket being claimed elsewhere must be skipped, not waited on"
    with store.session(readonly=True) as s:
        assert s.scalar(select(DialPacing.next_at).where(DialPacing.account_sid == a)) == 99.0


def test_heartbeats_and_dead_nodes(store: Store) -> None:
    me, other, gone = (f"node-{new_sid('XX')[-8:]}" for _ in range(3))
    with store.session() as s:
        assert heartbeat(s, me) is False  # first beat
        assert heartbeat(s, me) is True
        heartbeat(s, other)
        heartbeat(s, gone)
        s.execute(Node.__table__.update().where(Node.node_id == gone).values(seen_at=utcnow() - timedelta(minutes=5)))
    with store.session() as s:
        silent = dead_nodes(s, me, utcnow() - timedelta(seconds=30))
        assert gone in silent and other not in silent and me not in silent
        forget_node(s, gone)
    with store.session(readonly=True) as s:
        names = [n for n, _ in node_rows(s)]
    assert me in names and other in names and gone not in names
    with store.session() as s:
        # Taken for dead and forgotten, a node that beats again learns it (its row was gone).
        forget_node(s, me)
        assert heartbeat(s, me) is False
