from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ringback.twiml.testapp import AppServer, serve_app

TOKEN = "0123456789abcdef0123456789abcdef"


@pytest.fixture
async def app_server() -> AsyncIterator[AppServer]:
    async with serve_app(TOKEN) as server:
        yield server
