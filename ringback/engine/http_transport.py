"""The HTTP/1.1 transport under the engine's httpx client: keep-alive connections per origin on
asyncio protocols, h11 for the protocol, and a cap on requests in flight per origin.

Why not httpcore (httpx's default transport): measured on this engine, a busy call's report to its
app cost about 1.6 ms of CPU through httpx's default stack, more than the call's SIP and database
work together. Most of it is httpcore's pool, which walks every connection it holds (a poll() per
idle one) whenever a request starts or ends, and anyio's stream and cancel-scope layers. Here an
idle connection learns that its server closed it from the event loop (connection_lost), so
picking one is a list pop, and a request is one write and a few callbacks.

The cap (PER_ORIGIN requests in flight per origin, FIFO) keeps a burst of calls reporting to one
app from opening thousands of connections; waiting for a slot counts against the pool timeout.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ssl
import time
from collections.abc import AsyncIterator

import h11
import httpx

PER_ORIGIN = 512  # requests in flight to one origin; more wait their turn
KEEPALIVE_PER_ORIGIN = 64  # idle connections kept per origin
KEEPALIVE_EXPIRY = 5.0  # seconds an idle connection is kept (servers close theirs at about this)
READ_CHUNK_HIGH_WATER = 256 * 1024  # pause reading when this much body waits unread

Origin = tuple[str, str, int]


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: h11 state, and the bytes and events the loop hands over."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.h11 = h11.Connection(h11.CLIENT)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._pending = 0  # body bytes received and not yet read
        self._paused = False
        self.got = 0  # bytes of the current response received so far
        self._eof = False
        self._wake: asyncio.Future[None] | None = None

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport subclass

    def data_received(self, data: bytes) -> None:
        self.got += len(data)
        self.h11.receive_data(data)
        self._pending += len(data)
        if self._pending > READ_CHUNK_HIGH_WATER and self.transport is not None and not self._paused:
            self._paused = True
            self.transport.pause_reading()
        self._notify()

    def eof_received(self) -> bool | None:
        self._end_of_data()
        return None  # the transport closes; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._end_of_data()

    def _end_of_data(self) -> None:
        if not self._eof:
            self._eof = True
            with contextlib.suppress(h11.RemoteProtocolError, RuntimeError):
                self.h11.receive_data(b"")
        self._notify()

    def _notify(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    # -- used by the transport
    def reusable(self, now: float) -> bool:
        return (not self.closed and self.h11.our_state is h11.IDLE and self.h11.their_state is h11.IDLE
                and now - self.idle_since < KEEPALIVE_EXPIRY)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def send(self, *events: h11.Event) -> None:
        assert self.transport is not None
        out = b"".join(self.h11.send(e) or b"" for e in events)
        self.transport.write(out)

    async def next_event(self, timeout: float | None) -> h11.Event | type[h11.NEED_DATA]:
        """The next response event; waits for bytes (at most `timeout` between them)."""
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                if isinstance(event, h11.Data):
                    self._pending = max(0, self._pending - len(event.data))
                    if self._paused and self._pending < READ_CHUNK_HIGH_WATER // 2 and self.transport is not None:
                        self._paused = False
                        self.transport.resume_reading()
                return event
            if self.closed:
                # h11 was told of the EOF; NEED_DATA after it means the response was cut short
                raise httpx.RemoteProtocolError("server closed the connection mid-response")
            self._wake = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(self._wake, timeout)
            except TimeoutError as e:
                raise httpx.ReadTimeout("timed out waiting for the app's response") from e
            finally:
                self._wake = None


class _Body(httpx.AsyncByteStream):
    """A response body read straight off its connection; closing it ends the request's turn."""

    def __init__(self, transport: AppTransport, conn: _Connection, read_timeout: float | None) -> None:
        self._transport = transport
        self._conn: _Connection | None = conn
        self._timeout = read_timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn = self._conn
        if conn is None:
            return
        while True:
            try:
                event = await conn.next_event(self._timeout)
            except h11.RemoteProtocolError as e:
                raise httpx.RemoteProtocolError(str(e)) from e
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self._finish(reuse=True)
                return
            else:
                raise httpx.RemoteProtocolError(f"unexpected {type(event).__name__} in the body")

    async def aclose(self) -> None:
        self._finish(reuse=False)

    def _finish(self, *, reuse: bool) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._transport._release(conn, reuse)


class _Gate:
    """Per-origin FIFO of requests waiting for a turn, and that origin's idle connections."""

    def __init__(self, limit: int) -> None:
        self.slots = asyncio.Semaphore(limit)
        self.idle: collections.deque[_Connection] = collections.deque()


class AppTransport(httpx.AsyncBaseTransport):
    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        per_origin: int = PER_ORIGIN,
        keepalive_per_origin: int = KEEPALIVE_PER_ORIGIN,
    ) -> None:
        self._ssl = ssl_context
        self._per_origin = per_origin
        self._keepalive = keepalive_per_origin
        self._gates: dict[Origin, _Gate] = {}
        self._busy: set[_Connection] = set()

    def in_flight(self) -> int:
        """Requests holding a turn right now (sent, or their body not yet read or closed)."""
        return len(self._busy)

    def idle_connections(self) -> int:
        return sum(len(g.idle) for g in self._gates.values())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported scheme {scheme!r}")
        origin: Origin = (scheme, url.host, url.port or (443 if scheme == "https" else 80))
        timeouts = request.extensions.get("timeout", {})
        gate = self._gates.get(origin)
        if gate is None:
            gate = self._gates[origin] = _Gate(self._per_origin)
        try:
            await asyncio.wait_for(gate.slots.acquire(), timeouts.get("pool"))
        except TimeoutError as e:
            raise httpx.PoolTimeout(f"no connection to {url.host} free within {timeouts.get('pool')} s") from e
        body = await request.aread()
        try:
            return await self._exchange(request, origin, gate, body, timeouts)
        except BaseException:
            gate.slots.release()
            raise

    async def _exchange(
        self, request: httpx.Request, origin: Origin, gate: _Gate, body: bytes, timeouts: dict[str, float | None]
    ) -> httpx.Response:
        read_timeout = timeouts.get("read")
        target = request.url.raw_path
        headers = [(k, v) for k, v in request.headers.raw]
        now = time.monotonic()
        while gate.idle:
            conn = gate.idle.pop()  # the most recently used: the least likely to have timed out
            if not conn.reusable(now):
                conn.close()
                continue
            # An idle connection the server closed a moment ago fails before any response byte:
            # that request never reached the app, so it goes again on a fresh connection.
            with contextlib.suppress(_NotSent):
                return await self._send(conn, request, target, headers, body, read_timeout)
        conn = await self._connect(origin, timeouts.get("connect"))
        try:
            return await self._send(conn, request, target, headers, body, read_timeout)
        except _NotSent as e:
            raise httpx.RemoteProtocolError("server closed the connection without a response") from e

    async def _connect(self, origin: Origin, timeout: float | None) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        ssl_ctx: ssl.SSLContext | None = None
        if scheme == "https":
            ssl_ctx = self._ssl or ssl.create_default_context()
        try:
            tr, conn = await asyncio.wait_for(
                loop.create_connection(lambda: _Connection(origin), host, port, ssl=ssl_ctx,
                                       server_hostname=host if ssl_ctx is not None else None),
                timeout,
            )
        except TimeoutError as e:
            raise httpx.ConnectTimeout(f"timed out connecting to {host}:{port}") from e
        except OSError as e:  # refused, unreachable, DNS (socket.gaierror), TLS (ssl.SSLError)
            raise httpx.ConnectError(str(e)) from e
        conn.transport = tr  # uvloop may call connection_made only after create_connection returns
        sock = tr.get_extra_info("socket")
        if sock is not None:
            import socket

            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    async def _send(
        self, conn: _Connection, request: httpx.Request, target: bytes,
        headers: list[tuple[bytes, bytes]], body: bytes, read_timeout: float | None,
    ) -> httpx.Response:
        """Send the request and read the response head. On any failure (timeout, cancellation,
        protocol error) the connection is closed: its state is unknown."""
        self._busy.add(conn)
        try:
            return await self._request(conn, request, target, headers, body, read_timeout)
        except BaseException:
            self._busy.discard(conn)
            conn.close()
            raise

    async def _request(
        self, conn: _Connection, request: httpx.Request, target: bytes,
        headers: list[tuple[bytes, bytes]], body: bytes, read_timeout: float | None,
    ) -> httpx.Response:
        try:
            events: list[h11.Event] = [h11.Request(method=request.method, target=target, headers=headers)]
            if body:
                events.append(h11.Data(data=body))
            events.append(h11.EndOfMessage())
            conn.send(*events)
            while True:
                event = await conn.next_event(read_timeout)
                if isinstance(event, h11.InformationalResponse):
                    continue  # 100 Continue and the like
                break
        except (httpx.RemoteProtocolError, h11.ProtocolError, RuntimeError) as e:
            if conn.closed and conn.got == 0:
                raise _NotSent from e
            if isinstance(e, httpx.RemoteProtocolError):
                raise
            if isinstance(e, h11.RemoteProtocolError):
                raise httpx.RemoteProtocolError(str(e)) from e
            raise httpx.LocalProtocolError(str(e)) from e
        if isinstance(event, h11.ConnectionClosed) and conn.got == 0:
            raise _NotSent
        if not isinstance(event, h11.Response):
            raise httpx.RemoteProtocolError(f"unexpected {type(event).__name__} before the response")
        return httpx.Response(
            status_code=event.status_code,
            headers=event.headers.raw_items(),
            stream=_Body(self, conn, read_timeout),
            extensions={"http_version": b"HTTP/" + event.http_version, "reason_phrase": event.reason},
        )

    def _release(self, conn: _Connection, reuse: bool) -> None:
        """The request's body is done (read to the end, or abandoned): free its turn."""
        self._busy.discard(conn)
        gate = self._gates.get(conn.origin)
        if gate is not None:
            gate.slots.release()
        if reuse and gate is not None and not conn.closed and len(gate.idle) < self._keepalive:
            try:
                conn.h11.start_next_cycle()
            except h11.LocalProtocolError:  # not keep-alive (Connection: close, HTTP/1.0)
                conn.close()
                return
            conn.got = 0
            conn.idle_since = time.monotonic()
            gate.idle.append(conn)
        else:
            conn.close()

    async def aclose(self) -> None:
        for gate in self._gates.values():
            while gate.idle:
                gate.idle.pop().close()
        for conn in list(self._busy):
            conn.close()
        self._busy.clear()


class _NotSent(Exception):
    """The connection failed before any part of a response arrived."""
