"""A cap on app requests in flight per origin, in front of httpx's connection pool.

httpcore's pool, on every request start and end, walks its whole queue of waiting requests
against every connection it holds. When a burst of calls asks one app at once (a thousand calls
reporting busy together), that walk is quadratic and the engine's loop spends seconds in it
(seen in a profile: 1,800 queued reports, all time in ``Origin.__eq__``). Requests wait here
instead, on a FIFO semaphore per origin, and reach the pool only when a connection is theirs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx

# As many as the pool may open (context.py): an app slow to answer still gets up to 512 calls'
# requests at once, as before the gate; beyond that they queue here, not in the pool.
PER_ORIGIN = 512


class _ReleasingStream(httpx.AsyncByteStream):
    """The response body; closing it (read to the end or abandoned) frees the origin's slot."""

    def __init__(self, inner: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._inner = inner
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            if self._release is not None:
                release, self._release = self._release, None
                release()


class GatedTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, per_origin: int = PER_ORIGIN) -> None:
        self._inner = inner
        self._per_origin = per_origin
        self._gates: dict[tuple[bytes, bytes, int | None], asyncio.Semaphore] = {}

    def in_flight(self) -> int:
        return sum(self._per_origin - g._value for g in self._gates.values())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        key = (request.url.raw_scheme, request.url.raw_host, request.url.port)
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = asyncio.Semaphore(self._per_origin)
        # Waiting for a slot is waiting for a connection: it counts against the pool timeout.
        pool_timeout = request.extensions.get("timeout", {}).get("pool")
        try:
            await asyncio.wait_for(gate.acquire(), pool_timeout)
        except TimeoutError as e:
            raise httpx.PoolTimeout(f"no connection to {request.url.host} free within {pool_timeout} s") from e
        try:
            response = await self._inner.handle_async_request(request)
        except BaseException:
            gate.release()
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _ReleasingStream(response.stream, gate.release)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()
