"""Interop fixtures: a whole ringback server in-process whose trunk is a real SIP peer on loopback.

`start_ringback(tmp_path, trunk)` gives a Harness (same shape as tests/engine's) with the bootstrap
account owning CALLER, so REST calls can be placed to the peer as they would be to a carrier.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from ringback.server import RingbackServer
from ringback.store.accounts import add_number
from ringback.store.models import Call
from ringback.twiml.testapp import AppServer, serve_app

from ..engine.conftest import fast_settings

CALLER = "4155550100"
CALLED = "4155550199"  # goes out as INVITE sip:+14155550199@peer


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

    async def make_call(self, path: str = "/app", called: str = CALLED, **params: str) -> str:
        data = {"Caller": CALLER, "Called": called, "Url": self.app.url(path), **params}
        r = await self.http.post(self.calls_path, data=data)
        assert r.status_code == 201, r.text
        return ET.fromstring(r.content).findtext("Call/Sid") or ""

    async def call_json(self, sid: str) -> dict[str, Any]:
        r = await self.http.get(f"{self.calls_path}/{sid}.json")
        assert r.status_code == 200, r.text
        return r.json()["TwilioResponse"]["Call"]

    async def wait_final(self, sid: str, timeout: float = 20.0) -> dict[str, Any]:
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

    def requests_for(self, sid: str) -> list[Any]:
        return [s for s in self.app.seen if s.params.get("CallSid") == sid]

    async def first_request(self, sid: str, timeout: float = 5.0) -> Any:
        deadline = time.monotonic() + timeout
        while not self.requests_for(sid):
            assert time.monotonic() < deadline, f"no app request for {sid}"
            await asyncio.sleep(0.02)
        return self.requests_for(sid)[0]


@contextlib.asynccontextmanager
async def start_ringback(tmp_path: Path, trunk: str, **overrides: Any) -> AsyncIterator[Harness]:
    settings = fast_settings(tmp_path, trunk=trunk, **overrides)
    server = RingbackServer(settings)
    await server.start()
    assert server.account is not None and server.store is not None
    await asyncio.to_thread(add_number, server.store, server.account[0], CALLER)
    try:
        async with serve_app(server.account[1]) as app:
            h = Harness(server, app)
            try:
                yield h
            finally:
                await h.http.aclose()
    finally:
        await server.stop(grace=3.0)
