"""Nothing lost (issue 6 item 6): kill -9 the server during a run of 500 calls, with the phones in
their own process counting the INVITEs they get, and start it again: every call ends in a final
state, none is dialled twice, none is lost. And no leaked sockets, ports or tasks after many calls.

Both are slow: run with `pytest -m slow tests/engine/test_crash_and_leaks.py`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import http.server
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from ringback.server import RingbackServer
from ringback.store.db import Store
from ringback.store.models import Call
from ringback.twiml.testapp import serve_app
from tests.support.harness import fast_settings
from tests.support.ports import free_port

pytestmark = pytest.mark.slow



class _Server(http.server.ThreadingHTTPServer):
    # The default listen backlog (5) refuses connections when many calls ask the app at once.
    request_queue_size = 512
    daemon_threads = True


def _start_server(env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "ringback.cli", "serve"], cwd=cwd, env=env,
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115


def _wait_health(base: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError("server did not come up")


class _HangupApp(http.server.BaseHTTPRequestHandler):
    """The app: hang up at once, so calls are short and the crash finds calls in every state."""

    def _reply(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = b"<Response><Hangup/></Response>"
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _reply

    def log_message(self, *args: object) -> None:
        pass


def test_kill_9_during_500_calls_loses_nothing_and_dials_nothing_twice(tmp_path: Path) -> None:
    n_calls = 500
    app = _Server(("127.0.0.1", 0), _HangupApp)
    threading.Thread(target=app.serve_forever, daemon=True).start()
    app_url = f"http://127.0.0.1:{app.server_address[1]}/app"
    sandbox_port, http_port, sip_port = free_port(socket.SOCK_DGRAM), free_port(), free_port(socket.SOCK_DGRAM)
    sid, token = "AC" + "1" * 32, "2" * 32
    env = dict(os.environ, RINGBACK_SANDBOX_PERSON_RING="0.3", RINGBACK_ACCOUNT_SID=sid, RINGBACK_AUTH_TOKEN=token)
    phones = subprocess.Popen(
        [sys.executable, "-m", "ringback.cli", "sandbox", "serve", "--sip", f"127.0.0.1:{sandbox_port}",
         "--data-dir", str(tmp_path), "--rtp-ports", "44000-47999"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env.update(RINGBACK_HTTP=f"127.0.0.1:{http_port}", RINGBACK_SIP=f"127.0.0.1:{sip_port}",
               RINGBACK_TRUNK=f"sip:127.0.0.1:{sandbox_port}", RINGBACK_CPS="30", RINGBACK_RTP_PORTS="48000-51999",
               RINGBACK_SHUTDOWN_GRACE="5")
    base = f"http://127.0.0.1:{http_port}"
    server = _start_server(env, tmp_path, tmp_path / "server.log")
    try:
        _wait_health(base)
        subprocess.run([sys.executable, "-m", "ringback.cli", "callerid", "add", "4155550100", "--account", sid],
                       cwd=tmp_path, env=env, check=True, capture_output=True)

        async def post_all() -> list[str]:
            async with httpx.AsyncClient(base_url=base, auth=(sid, token), timeout=30) as http:
                async def one(i: int) -> str:
                    r = await http.post(f"/2008-08-01/Accounts/{sid}/Calls", data={
                        "Caller": "4155550100", "Called": f"50055501{i % 50:02d}", "Url": app_url})
                    assert r.status_code == 201, r.text
                    return re.search(r"<Sid>(CA\w+)</Sid>", r.text).group(1)  # type: ignore[union-attr]
                sem = asyncio.Semaphore(20)

                async def guarded(i: int) -> str:
                    async with sem:
                        return await one(i)
                return list(await asyncio.gather(*(guarded(i) for i in range(n_calls))))

        sids = asyncio.run(post_all())
        # Crash while calls are live: wait until the database shows some dialled and unfinished.
        import sqlite3

        db = sqlite3.connect(str(tmp_path / "ringback.db"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            live = db.execute("select count(*) from calls where state in ('dialing','ringing','running')").fetchone()[0]
            done = db.execute("select count(*) from calls where state = 'ended'").fetchone()[0]
            if live >= 3 and done >= 10:
                break
            time.sleep(0.01)
        db.close()
        server.send_signal(signal.SIGKILL)
        server.wait()
        server = _start_server(env, tmp_path, tmp_path / "server.log")
        _wait_health(base)

        store = Store(f"sqlite:///{tmp_path}/ringback.db", migrate=False)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            with store.session(readonly=True) as s:
                states = collections.Counter(s.get(Call, x).state for x in sids)  # type: ignore[union-attr]
            if states.get("ended", 0) == n_calls:
                break
            time.sleep(1.0)
        with store.session(readonly=True) as s:
            calls = [s.get(Call, x) for x in sids]
        store.dispose()
        assert all(c is not None and c.state == "ended" for c in calls), collections.Counter(
            c.state for c in calls if c)
        statuses = collections.Counter(c.status for c in calls if c)
        assert set(statuses) <= {2, 4}, statuses
        assert statuses[2] > 0 and statuses[4] > 0  # some completed, some were cut by the crash
        invites = collections.Counter((tmp_path / "sandbox" / "invites.log").read_text().split())
        assert max(invites.values()) == 1, [k for k, v in invites.items() if v > 1][:5]
        dialled = set(invites)
        for c in calls:
            assert c is not None
            if c.status == 2:
                assert c.sid in dialled
    finally:
        app.shutdown()
        for proc in (server, phones):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()


async def test_no_leaks_after_many_calls(tmp_path: Path) -> None:
    n_calls = int(os.environ.get("RINGBACK_LEAK_CALLS", "2000"))
    # 40 calls/s keeps ~15 calls up with both ends in this one process: a leak test, not a load test.
    settings = fast_settings(tmp_path, cps=40.0)
    settings.rtp_ports = (52000, 59998)  # room for every call in flight, both ends share the engine
    settings.timings.person_ring = 0.05
    settings.sip_t1 = 0.5  # RFC timers: at this load the tests' 0.1 s T1 gives up on BYEs too soon
    server = RingbackServer(settings)
    await server.start()
    assert server.account is not None and server.ctx is not None and server.sandbox is not None
    sid, token, _ = server.account

    def fd_targets() -> list[str]:
        out = []
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                out.append(os.readlink(f"/proc/self/fd/{fd}"))
        return out

    def fds() -> int:
        return len(fd_targets())

    try:
        async with serve_app(token) as app, httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{server.http_port}", auth=(sid, token), timeout=60,
            limits=httpx.Limits(max_connections=20)) as http:
            app.twiml("/app", "<Response><Hangup/></Response>")
            before = None
            sem = asyncio.Semaphore(40)

            async def one(i: int) -> None:
                async with sem:
                    r = await http.post(f"/2008-08-01/Accounts/{sid}/Calls", data={
                        "Caller": "5005551000", "Called": f"50055501{i % 50:02d}", "Url": app.url("/app")})
                    assert r.status_code == 201

            for batch in range(0, n_calls, 500):
                await asyncio.gather(*(one(i) for i in range(batch, min(n_calls, batch + 500))))
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    with server.store.session(readonly=True) as s:  # type: ignore[union-attr]
                        from sqlalchemy import func, select

                        live = s.scalar(select(func.count()).select_from(Call).where(Call.state != "ended"))
                    phones_busy = any(not x.done.is_set() for x in server.sandbox.heard.values())
                    if not live and not server.ctx.tasks and not phones_busy:
                        break
                    await asyncio.sleep(0.2)
                await asyncio.sleep(0.5)
                if before is None:
                    before = fds()  # after the first batch: pools and caches are warm
            undone = [h for h in server.sandbox.heard.values() if not h.done.is_set()]
            assert not undone, (len(undone), server.ua.stats, server.sandbox.ua.stats)  # type: ignore[union-attr]
            assert server.media.active_sessions == 0  # type: ignore[union-attr]
            assert not server.ctx.tasks and not server.ctx.live
            # Finished transactions linger for their absorb timers (J, K: up to 64*T1), then go.
            deadline = time.monotonic() + 64 * settings.sip_t1 + 5
            while not (server.ua.idle and server.sandbox.ua.idle) and time.monotonic() < deadline:  # type: ignore[union-attr]
                await asyncio.sleep(0.5)
            assert server.ua.idle and server.sandbox.ua.idle, (server.ua.stats, server.sandbox.ua.stats)  # type: ignore[union-attr]
            assert fds() <= (before or 0) + 10, collections.Counter(t.split(":")[0] for t in fd_targets())
            statuses = collections.Counter()
            with server.store.session(readonly=True) as s:  # type: ignore[union-attr]
                from sqlalchemy import func, select

                for status, code, n in s.execute(select(Call.status, Call.sip_response_code, func.count())
                                                 .group_by(Call.status, Call.sip_response_code)):
                    statuses[(status, code)] = n
            assert statuses == {(2, 200): n_calls}, statuses
            assert [t.name for t in threading.enumerate()].count("media-clock") == 1  # one clock thread
            # the media sender process holds no copy of a finished call's socket either
            link = server.media.clock.sender  # type: ignore[union-attr]
            assert link is not None
            sender_stats = await link.stats()
            assert sender_stats["sockets"] == 0 and sender_stats["pending"] == 0, sender_stats
    finally:
        await server.stop(grace=5)
    # the media clock's thread and the sender process end with the server
    assert "media-clock" not in [t.name for t in threading.enumerate()]
    assert link.proc.poll() is not None
