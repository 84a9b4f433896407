from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator

import pytest

# Lets the test modules import the fakes beside them (pytest uses importlib mode).
sys.path.insert(0, os.path.dirname(__file__))

from ringback.twiml.testapp import AppServer, serve_app  # noqa: E402

TOKEN = "0123456789abcdef0123456789abcdef"


@pytest.fixture
async def app() -> AsyncIterator[AppServer]:
    async with serve_app(TOKEN) as server:
        yield server
