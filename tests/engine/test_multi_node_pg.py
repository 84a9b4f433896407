"""Several nodes on one PostgreSQL database: each queued call is claimed (FOR UPDATE SKIP LOCKED)
and dialled by exactly one node, and both nodes take a share of the work."""

from __future__ import annotations

import asyncio
import collections
import uuid

import httpx
import pytest

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
