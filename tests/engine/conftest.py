"""End-to-end fixtures: a whole ringback server in-process (API, SIP UA, media, dialer, sandbox
network) on free ports with fast sandbox timings, and a scriptable app web server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from ringback.server import RingbackServer
from ringback.twiml.testapp import serve_app
from tests.support.harness import Harness, fast_settings

__all__ = ["Harness", "fast_settings"]


@pytest.fixture
async def harness(tmp_path: Any) -> AsyncIterator[Harness]:
    server = RingbackServer(fast_settings(tmp_path))
    await server.start()
    assert server.account is not None
    try:
        async with serve_app(server.account[1]) as app:
            h = Harness(server, app)
            try:
                yield h
            finally:
                await h.http.aclose()
    finally:
        await server.stop(grace=3.0)
