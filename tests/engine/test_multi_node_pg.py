"""Several nodes on one PostgreSQL database: each queued call is claimed (FOR UPDATE SKIP LOCKED)
and dialled by exactly one node, and both nodes take a share of the work."""

from __future__ import annotations

import asyncio
import collections
import uuid

import httpx
import pytest
from sqlalchemy import select

from ringback.server import RingbackServer
from ringback.twiml.testapp import serve_app
from tests.support.harness import fast_settings
from tests.support.pg import pg_schema

pytestmark = pytest.mark.pg


@pytest.fixture
def pg_url():  # type: ignore[no-untyped-def]
    with pg_schema("rb_nodes") as url:
        yield url


async def test_two_nodes_share_the_queue(tmp_path, pg_url) -> None:
    sid, token = "AC" + uuid.uuid4().hex, uuid.uuid4().hex
    nodes = []
    for name in ("a", "b"):
        s = fast_settings(tmp_path / name, database_url=pg_url, node_id=f"node-{name}", account_sid=sid,
                          auth_token=token, data_dir=str(tmp_path / name))
        (tmp_path / name).mkdir()
        nodes.append(RingbackServer(s))
    for n in nodes:
        await n.start()
    try:
        async with serve_app(token) as app, httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{nodes[0].http_port}", auth=(sid, token), timeout=30
        ) as http, httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{nodes[1].http_port}", auth=(sid, token), timeout=30
        ) as http_b:
            app.twiml("/app", "<Response><Hangup/></Response>")
            # Both nodes' sandboxes answer 500-555-01xx; the bootstrap gave the account 5005551000.
            # Calls arrive through both nodes' APIs, as behind a load balancer, in waves: the node a
            # wave is POSTed to is woken at once, the other only polls, so each node gets work.
            async def wave(client: httpx.AsyncClient, numbers: range) -> None:
                rs = await asyncio.gather(*(client.post(f"/2008-08-01/Accounts/{sid}/Calls", data={
                    "Caller": "5005551000", "Called": f"50055501{i:02d}", "Url": app.url("/app")}) for i in numbers))
                assert all(r.status_code == 201 for r in rs)

            async def ended() -> int:
                rows = (await http.get(f"/2008-08-01/Accounts/{sid}/Calls.json?Status=2&PageSize=100")).json()
                return len(rows["TwilioResponse"]["Calls"])

            for n, client in enumerate((http, http_b, http, http_b)):
                await wave(client, range(10 * n, 10 * n + 10))
                for _ in range(300):
                    if await ended() == 10 * n + 10:
                        break
                    await asyncio.sleep(0.1)
            rows = (await http.get(f"/2008-08-01/Accounts/{sid}/Calls.json?Status=2&PageSize=100")).json()
            assert len(rows["TwilioResponse"]["Calls"]) == 40
        first_requests = collections.Counter(s.params["CallSid"] for s in app.seen)
        assert len(first_requests) == 40 and max(first_requests.values()) == 1
        dialled = [set(n.sandbox.heard) for n in nodes]  # type: ignore[union-attr]
        assert not (dialled[0] & dialled[1])
        assert len(dialled[0] | dialled[1]) == 40
        assert dialled[0] and dialled[1], "both nodes should take calls"
    finally:
        for n in nodes:
            await n.stop(grace=2)


async def test_pacing_holds_across_nodes(tmp_path, pg_url) -> None:
    """Two nodes pacing one account at 1 call/s dial at 1 call/s together, not 2."""
    sid, token = "AC" + uuid.uuid4().hex, uuid.uuid4().hex
    nodes = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        s = fast_settings(tmp_path / name, database_url=pg_url, node_id=f"pace-{name}", account_sid=sid,
                          auth_token=token, data_dir=str(tmp_path / name), cps=1.0)
        nodes.append(RingbackServer(s))
    for n in nodes:
        await n.start()
    try:
        async with serve_app(token) as app:
            app.twiml("/app", "<Response><Hangup/></Response>")
            clients = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{n.http_port}", auth=(sid, token), timeout=30)
                       for n in nodes]
            try:
                # Six calls at once, three through each node: both nodes are woken and compete.
                rs = await asyncio.gather(*(clients[i % 2].post(f"/2008-08-01/Accounts/{sid}/Calls", data={
                    "Caller": "5005551000", "Called": f"50055501{i:02d}", "Url": app.url("/app")}) for i in range(6)))
                assert all(r.status_code == 201 for r in rs)
                for _ in range(300):
                    rows = (await clients[0].get(f"/2008-08-01/Accounts/{sid}/Calls.json?Status=2")).json()
                    if len(rows["TwilioResponse"]["Calls"]) == 6:
                        break
                    await asyncio.sleep(0.1)
            finally:
                for c in clients:
                    await c.aclose()
        from ringback.store.models import Call

        with nodes[0].store.session(readonly=True) as s:  # type: ignore[union-attr]
            claims = sorted((t, by) for t, by in s.execute(
                select(Call.claimed_at, Call.claimed_by).where(Call.account_sid == sid)))
        assert len(claims) == 6
        assert {by for _, by in claims} <= {"pace-a", "pace-b"}
        gaps = [(b[0] - a[0]).total_seconds() for a, b in zip(claims, claims[1:], strict=False)]
        # One token per second with a burst of one: consecutive claims, whichever node made them,
        # are a second apart (less a little for the two nodes' clock reads and commit order).
        assert min(gaps) >= 0.9, gaps
    finally:
        for n in nodes:
            await n.stop(grace=2)


async def test_a_dead_nodes_calls_are_taken_over(tmp_path, pg_url) -> None:
    """A node silent past dead-after: a survivor requeues what it had claimed (and dials it once),
    finalises what it had dialled with Status 4 and a 12400 Notification, and forgets the node;
    a live node's calls are left alone."""
    from datetime import timedelta

    from ringback.store.db import Store
    from ringback.store.models import Call, Node, Notification, utcnow

    sid, token = "AC" + uuid.uuid4().hex, uuid.uuid4().hex
    settings = fast_settings(tmp_path, database_url=pg_url, node_id="survivor", account_sid=sid,
                             auth_token=token, node_dead_after=0.5)
    async with serve_app(token) as app:
        app.twiml("/app", "<Response><Hangup/></Response>")
        store = Store(pg_url)
        now = utcnow()

        def row(state: str, node: str) -> Call:
            return Call(sid="CA" + uuid.uuid4().hex, account_sid=sid, called="5005550107", caller="5005551000",
                        status=0 if state == "claimed" else 1, state=state, flags=2, url=app.url("/app"),
                        method="POST", timeout=60, claimed_by=node, claimed_at=now, date_created=now,
                        date_updated=now, start_time=None if state == "claimed" else now)

        rows = {"claimed": row("claimed", "ghost"), "running": row("running", "ghost"),
                "alive": row("running", "neighbour")}
        with store.session() as s:
            s.add(Node(node_id="ghost", seen_at=now - timedelta(minutes=2), started_at=now - timedelta(hours=1)))
            # The neighbour beats far into the future so that it stays alive for the whole test.
            s.add(Node(node_id="neighbour", seen_at=now + timedelta(hours=1), started_at=now))
            for r in rows.values():
                s.add(r)
        server = RingbackServer(settings)
        await server.start()
        try:
            for _ in range(200):
                with store.session(readonly=True) as s:
                    states = {k: s.get(Call, r.sid, populate_existing=True).state for k, r in rows.items()}  # type: ignore[union-attr]
                if states["claimed"] == states["running"] == "ended":
                    break
                await asyncio.sleep(0.1)
            with store.session(readonly=True) as s:
                got = {k: s.get(Call, r.sid, populate_existing=True) for k, r in rows.items()}
                notes = list(s.scalars(select(Notification.error_code).where(Notification.call_sid == rows["running"].sid)))
                nodes = set(s.scalars(select(Node.node_id)))
            assert got["claimed"].status == 2 and got["claimed"].claimed_by == "survivor"  # type: ignore[union-attr]
            assert got["running"].status == 4 and got["running"].state == "ended"  # type: ignore[union-attr]
            assert notes == ["12400"]
            assert got["alive"].state == "running"  # type: ignore[union-attr]
            assert "ghost" not in nodes and {"survivor", "neighbour"} <= nodes
            assert [p.params["CallSid"] for p in app.seen].count(rows["claimed"].sid) == 1
            assert rows["running"].sid not in server.sandbox.heard  # type: ignore[union-attr]
        finally:
            await server.stop(grace=1)
            store.dispose()
