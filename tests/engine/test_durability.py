"""Calls survive restarts: queued calls wait in the database, calls that were dialled when the node
died are finalised (never dialled twice), and SIGTERM lets live calls finish."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import httpx
from sqlalchemy import select

from ringback.server import RingbackServer
from ringback.sids import new_sid
from ringback.store.models import Call, Notification, utcnow
from ringback.twiml.testapp import serve_app
from tests.support.harness import fast_settings
from tests.support.ports import free_port


def _call_row(account: str, state: str, node: str | None, url: str) -> Call:
    now = utcnow()
    return Call(
        sid=new_sid("CA"), account_sid=account, called="5005550107", caller="5005551000", status=0 if state in (
            "queued", "claimed") else 1, state=state, flags=2, url=url, method="POST", timeout=60,
        claimed_by=node, claimed_at=now if node else None, date_created=now, date_updated=now,
        start_time=now if state == "dialing" else None,
    )


async def test_restart_requeues_claimed_and_finalises_dialled_calls(tmp_path) -> None:
    settings = fast_settings(tmp_path, node_id="node-a")
    first = RingbackServer(settings)
    await first.start()
    assert first.account is not None
    sid, token, _ = first.account
    await first.stop(grace=1)

    # What a crash of node-a leaves behind: one call claimed but not dialled, one mid-dial, one
    # queued; and one claimed by another, live node (not ours to touch).
    async with serve_app(token) as app:
        app.twiml("/app", "<Response><Hangup/></Response>")
        store_server = RingbackServer(fast_settings(tmp_path, node_id="node-a"))
        # Write the rows through a plain Store before the node starts.
        from ringback.store.db import Store

        store = Store(settings.database_url)
        rows = {
            "claimed": _call_row(sid, "claimed", "node-a", app.url("/app")),
            "dialing": _call_row(sid, "dialing", "node-a", app.url("/app")),
            "queued": _call_row(sid, "queued", None, app.url("/app")),
            "other": _call_row(sid, "running", "node-b", app.url("/app")),
        }
        with store.session() as s:
            for row in rows.values():
                s.add(row)
        store.dispose()

        await store_server.start()
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                with store_server.store.session(readonly=True) as s:  # type: ignore[union-attr]
                    states = {k: s.get(Call, r.sid).state for k, r in rows.items()}  # type: ignore[union-attr]
                if states["claimed"] == states["queued"] == "ended":
                    break
                await asyncio.sleep(0.1)
            with store_server.store.session(readonly=True) as s:  # type: ignore[union-attr]
                got = {k: s.get(Call, r.sid) for k, r in rows.items()}
                notes = list(s.scalars(select(Notification).where(Notification.call_sid == rows["dialing"].sid)))
            assert got["claimed"].status == 2 and got["queued"].status == 2  # type: ignore[union-attr]
            assert got["dialing"].status == 4 and got["dialing"].state == "ended"  # type: ignore[union-attr]
            assert notes and notes[0].error_code == "12400"
            assert got["other"].state == "running"  # type: ignore[union-attr]
            # Dialled exactly once each: the phone network saw the requeued calls, never the dead one.
            sandbox = store_server.sandbox
            assert sandbox is not None
            assert rows["claimed"].sid in sandbox.heard and rows["queued"].sid in sandbox.heard
            assert rows["dialing"].sid not in sandbox.heard
            assert [p.params["CallSid"] for p in app.seen].count(rows["claimed"].sid) == 1
        finally:
            await store_server.stop(grace=1)


async def test_graceful_stop_lets_a_live_call_finish(tmp_path) -> None:
    server = RingbackServer(fast_settings(tmp_path))
    await server.start()
    assert server.account is not None
    sid, token, _ = server.account
    async with serve_app(token) as app, httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{server.http_port}", auth=(sid, token)
    ) as http:
        app.twiml("/app", "<Response><Pause length=\"2\"/><Say>Goodbye</Say></Response>")
        r = await http.post(f"/2008-08-01/Accounts/{sid}/Calls",
                            data={"Caller": "5005551000", "Called": "5005550108", "Url": app.url("/app")})
        call_sid = ET.fromstring(r.content).findtext("Call/Sid")
        while not app.seen:
            await asyncio.sleep(0.05)
        stopping = asyncio.ensure_future(server.stop(grace=10))
        await asyncio.sleep(0.2)
        health = await http.get("/health")
        assert health.status_code == 503  # no longer taking calls
        await stopping
    from ringback.store.db import Store

    store = Store(server.settings.database_url)
    with store.session(readonly=True) as s:
        call = s.get(Call, call_sid)
        assert call is not None and call.status == 2 and call.state == "ended" and call.duration is not None
    store.dispose()



def test_readme_first_call_with_ringback_serve(tmp_path) -> None:
    """`ringback serve` with no configuration, then the README's curl call to the demo app."""
    http_port, sip_port = free_port(), free_port(socket.SOCK_DGRAM)
    env = dict(os.environ, RINGBACK_HTTP=f"127.0.0.1:{http_port}", RINGBACK_SIP=f"127.0.0.1:{sip_port}",
               RINGBACK_RTP_PORTS="36000-36999", RINGBACK_SANDBOX_PERSON_RING="0.3")
    proc = subprocess.Popen([sys.executable, "-m", "ringback.cli", "serve"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out = ""
        deadline = time.monotonic() + 30
        while "AuthToken" not in out and time.monotonic() < deadline:
            out += proc.stdout.readline()  # type: ignore[union-attr]
        sid = re.search(r"AccountSid (AC\w+)", out).group(1)  # type: ignore[union-attr]
        token = re.search(r"AuthToken +(\w+)", out).group(1)  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{http_port}"
        with httpx.Client(base_url=base, auth=(sid, token), timeout=10) as http:
            while http.get("/health").status_code != 200:
                time.sleep(0.05)
            r = http.post(f"/2008-08-01/Accounts/{sid}/Calls", data={
                "Caller": "5005551000", "Called": "5005550100", "Url": f"{base}/demo/hello"})
            assert r.status_code == 201, r.text
            assert r.text.startswith('<?xml version="1.0"?>')
            call_sid = ET.fromstring(r.content).findtext("Call/Sid")
            deadline = time.monotonic() + 30
            status = "0"
            while time.monotonic() < deadline:
                call = ET.fromstring(http.get(f"/2008-08-01/Accounts/{sid}/Calls/{call_sid}").content)
                status = call.findtext("Call/Status") or ""
                if status not in ("0", "1"):
                    break
                time.sleep(0.2)
            assert status == "2"
            heard = http.get(f"/sandbox/Calls/{call_sid}.json").json()
            assert heard["result"] == "completed" and heard["audio_seconds"] > 3
            assert (tmp_path / "ringback.db").exists()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
