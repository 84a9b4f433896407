"""End-to-end fixtures: a whole ringback server in-process (API, SIP UA, media, dialer, sandbox
network) on free ports with fast sandbox timings, and a scriptable app web server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.harness import Harness, fast_settings, running

__all__ = ["Harness", "fast_settings"]


@pytest.fixture
async def harness(tmp_path: Any) -> AsyncIterator[Harness]:
    async with running(fast_settings(tmp_path)) as h:
        yield h
