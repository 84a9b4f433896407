"""Thin asyncio adapter: moves bytes between UDP/TCP sockets and a SipEndpoint and arms its timer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable

from ringback.sip.endpoint import SipEndpoint
from ringback.sip.errors import ParseError
from ringback.sip.message import StreamFramer

log = logging.getLogger(__name__)
Addr = tuple[str, int]


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, owner: SipTransport) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # type: ignore[type-arg]
        self.owner.feed(data, (addr[0], addr[1]), "udp")

    def error_received(self, exc: Exception) -> None:
        # ICMP unreachable etc.: the transaction timers deal with the silence
        self.owner.stats["udp_errors"] += 1


class _Tcp(asyncio.Protocol):
    def __init__(self, owner: SipTransport) -> None:
        self.owner = owner
        self.framer = StreamFramer()
        self.transport: asyncio.Transport | None = None
        self.peer: Addr | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = (peer[0], peer[1])
        self.owner.tcp_conns[self.peer] = self

    def data_received(self, data: bytes) -> None:
        try:
            messages = self.framer.feed(data)
        except ParseError:
            self.owner.stats["malformed"] += 1
            if self.transport is not None:
                self.transport.close()
            return
        assert self.peer is not None
        for msg in messages:
            self.owner.feed(msg, self.peer, "tcp")

    def connection_lost(self, exc: Exception | None) -> None:
        # it may be known under the dialled name too: drop every alias
        for key in [k for k, v in self.owner.tcp_conns.items() if v is self]:
            del self.owner.tcp_conns[key]

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


class SipTransport:
    """Owns the sockets of one SipEndpoint; `on_flush` runs after every state change to take events."""

    def __init__(self, endpoint: SipEndpoint, on_flush: Callable[[], None]) -> None:
        self.ep = endpoint
        self.on_flush = on_flush
        self.stats: dict[str, int] = {"udp_errors": 0, "malformed": 0, "internal_errors": 0, "tcp_connect_errors": 0}
        self.tcp_conns: dict[Addr, _Tcp] = {}
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp_server: asyncio.base_events.Server | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._pending_tcp: dict[Addr, list[bytes]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.tcp = True

    @property
    def now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    async def start(self, host: str, port: int, *, tcp: bool = True) -> int:
        self._loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for _attempt in range(20):
            udp, _ = await self._loop.create_datagram_endpoint(lambda: _Udp(self), local_addr=(host, port),
                                                               family=family)
            real = udp.get_extra_info("sockname")[1]
            sock = udp.get_extra_info("socket")
            if sock is not None:
                # bursts of INVITEs should queue in the kernel, not be dropped and retransmitted
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
            if not tcp:
                self._udp = udp  # type: ignore[assignment]
                self.tcp = False
                return real
            try:
                self._tcp_server = await self._loop.create_server(lambda: _Tcp(self), host, real, family=family,
                                                                  reuse_address=True)
            except OSError:
                udp.close()
                if port:
                    raise
                continue  # the ephemeral UDP port is taken for TCP: try another one
            self._udp = udp  # type: ignore[assignment]
            return real
        raise OSError("no port free for both UDP and TCP")

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in list(self._tasks):
            task.cancel()
        for conn in list(self.tcp_conns.values()):
            if conn.transport is not None:
                conn.transport.close()
        self.tcp_conns.clear()
        if self._tcp_server is not None:
            self._tcp_server.close()
            with contextlib.suppress(Exception):
                await self._tcp_server.wait_closed()
        if self._udp is not None:
            self._udp.close()
        await asyncio.sleep(0)

    # ------------------------------------------------------------------ core plumbing
    def feed(self, data: bytes, addr: Addr, transport: str) -> None:
        try:
            self.ep.receive_datagram(data, addr, self.now, transport)
        except Exception:  # a bug in the core must not take the socket down with it
            self.stats["internal_errors"] += 1
            log.exception("SIP core failed on a message from %s", addr)
        self.flush()

    def flush(self) -> None:
        for data, addr, transport in self.ep.datagrams_to_send(self.now):
            self._send(data, addr, transport)
        self.on_flush()
        # handlers may have acted on events: send again, then arm the timer
        for data, addr, transport in self.ep.datagrams_to_send(self.now):
            self._send(data, addr, transport)
        self._arm()

    def _arm(self) -> None:
        deadline = self.ep.get_timer()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None and self._loop is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        try:
            self.ep.handle_timer(self.now)
        except Exception:
            self.stats["internal_errors"] += 1
            log.exception("SIP core failed in a timer")
        self.flush()

    def _send(self, data: bytes, addr: Addr, transport: str) -> None:
        if transport == "tcp" and self.tcp:
            conn = self.tcp_conns.get(addr)
            if conn is not None:
                conn.send(data)
                return
            queue = self._pending_tcp.get(addr)
            if queue is not None:
                queue.append(data)
                return
            self._pending_tcp[addr] = [data]
            task = asyncio.get_running_loop().create_task(self._connect(addr))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        if self._udp is not None:
            try:
                self._udp.sendto(data, addr)
            except OSError:
                self.stats["udp_errors"] += 1

    async def _connect(self, addr: Addr) -> None:
        assert self._loop is not None
        try:
            _, proto = await self._loop.create_connection(lambda: _Tcp(self), addr[0], addr[1])
        except OSError:
            self.stats["tcp_connect_errors"] += 1
            self._pending_tcp.pop(addr, None)  # the transaction's timer reports the failure
            return
        assert isinstance(proto, _Tcp)
        # the connection is known under its real peer name and the name we dialled
        self.tcp_conns[addr] = proto
        for data in self._pending_tcp.pop(addr, []):
            proto.send(data)
