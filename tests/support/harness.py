"""What end-to-end tests share: a ringback server in-process on free ports with fast sandbox
timings, and a Harness to place REST calls and look at their outcome."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx

from ringback.config import Settings, Timings
from ringback.server import RingbackServer
from ringback.store.models import Call
from ringback.twiml.testapp import AppServer, serve_app

# Each server gets its own RTP range (random, away from the default 20000-29999 and from the
# benchmarks' ranges) so a slow port release or another process never collides with it.
_rng = random.Random()


def fast_settings(tmp_path: Any, **overrides: Any) -> Settings:
    base = _rng.randrange(40000, 58000, 2)
    s = Settings(
        http_host="127.0.0.1",
        http_port=0,
        sip_host="127.0.0.1",
        sip_port=0,
        rtp_ports=(base, base + 598),
        database_url=f"sqlite:///{tmp_path}/ringback.db",
        data_dir=str(tmp_path),
        cps=1000.0,
        shutdown_grace=3.0,
        sip_t1=0.1,
        timings=Timings(person_ring=0.3, machine_ring=0.3, digits_delay=1.0, hangup_after=1.0),
    )
    for k, v in overrides.items():
        setattr(s, k, v)
    return s



class Harness:
    def __init__(self, server: RingbackServer, app: AppServer) -> None:
        self.server = server
        self.app = app
        assert server.account is not None
        self.sid, self.token, _ = server.account
        self.base = f"http://127.0.0.1:{server.http_port}"
        self.http = httpx.AsyncClient(base_url=self.base, auth=(self.sid, self.token), timeout=30.0)

    @property
    def calls_path(self) -> str:
        return f"/2008-08-01/Accounts/{self.sid}/Calls"

    async def make_call(self, called: str, path: str = "/app", *, caller: str = "5005551000", **params: str) -> str:
        data = {"Caller": caller, "Called": called, "Url": self.app.url(path), **params}
        r = await self.http.post(self.calls_path, data=data)
        assert r.status_code == 201, r.text
        return ET.fromstring(r.content).findtext("Call/Sid") or ""

    async def call_json(self, sid: str) -> dict[str, Any]:
        r = await self.http.get(f"{self.calls_path}/{sid}.json")
        assert r.status_code == 200, r.text
        return r.json()["TwilioResponse"]["Call"]

    async def wait_final(self, sid: str, timeout: float = 20.0) -> dict[str, Any]:
        """Poll until the call has reached its final state."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            call = await self.call_json(sid)
            if call["Status"] not in ("0", "1") and not self.server.ctx.live.get(sid):  # type: ignore[union-attr]
                return call
            await asyncio.sleep(0.05)
        raise AssertionError(f"call {sid} did not finish: {await self.call_json(sid)}")

    def sip_response_code(self, sid: str) -> int | None:
        """The SipResponseCode kept on the call (the 2008 API does not render it)."""
        assert self.server.store is not None
        with self.server.store.session(readonly=True) as s:
            call = s.get(Call, sid)
            assert call is not None
            return call.sip_response_code

    async def heard(self, sid: str, timeout: float = 20.0) -> Any:
        """What the sandbox phone heard on `sid` (in-process sandbox only)."""
        assert self.server.sandbox is not None
        return await self.server.sandbox.wait(sid, timeout)

    async def segments(self, sid: str) -> list[dict[str, Any]]:
        """The call's Segments (its <Dial> legs) as JSON objects."""
        r = await self.http.get(f"{self.calls_path}/{sid}/Segments.json")
        assert r.status_code == 200, r.text
        return [c["Call"] for c in r.json()["TwilioResponse"]["Calls"]]

    def requests_for(self, sid: str) -> list[Any]:
        return [s for s in self.app.seen if s.params.get("CallSid") == sid]

    async def first_request(self, sid: str, timeout: float = 5.0) -> Any:
        deadline = time.monotonic() + timeout
        while not self.requests_for(sid):
            assert time.monotonic() < deadline, f"no app request for {sid}"
            await asyncio.sleep(0.02)
        return self.requests_for(sid)[0]


@contextlib.asynccontextmanager
async def running(
    settings: Settings,
    harness_cls: type[Harness] = Harness,
    before: Callable[[RingbackServer], Awaitable[None]] | None = None,
) -> AsyncIterator[Any]:
    """A whole ringback server in-process and an app web server, torn down whatever happens."""
    server = RingbackServer(settings)
    await server.start()
    assert server.account is not None
    try:
        if before is not None:
            await before(server)
        async with serve_app(server.account[1]) as app:
            h = harness_cls(server, app)
            try:
                yield h
            finally:
                await h.http.aclose()
    finally:
        await server.stop(grace=3.0)
