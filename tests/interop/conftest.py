"""Interop fixtures: a whole ringback server in-process whose trunk is a real SIP peer on loopback.

`start_ringback(tmp_path, trunk)` gives a Harness (same shape as tests/engine's) with the bootstrap
account owning CALLER, so REST calls can be placed to the peer as they would be to a carrier.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ringback.server import RingbackServer
from ringback.store.accounts import add_number
from tests.support.harness import Harness, fast_settings, running

CALLER = "4155550100"
CALLED = "4155550199"  # goes out as INVITE sip:+14155550199@peer



class PeerHarness(Harness):
    """Calls go from CALLER (one of the account's numbers) to CALLED at the peer by default."""

    async def make_call(self, path: str = "/app", called: str = CALLED, **params: str) -> str:  # type: ignore[override]
        return await super().make_call(called, path, caller=CALLER, **params)


@contextlib.asynccontextmanager
async def start_ringback(tmp_path: Path, trunk: str, **overrides: Any) -> AsyncIterator[PeerHarness]:
    async def give_caller_number(server: RingbackServer) -> None:
        # With a real trunk the bootstrap account has no sandbox number: give it CALLER.
        assert server.account is not None and server.store is not None
        await asyncio.to_thread(add_number, server.store, server.account[0], CALLER)

    async with running(fast_settings(tmp_path, trunk=trunk, **overrides), PeerHarness, give_caller_number) as h:
        yield h
