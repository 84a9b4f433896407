"""A UDP relay that impairs traffic like a bad network (the kernel's netem is not available here).

Two legs: whatever arrives on ``port_a`` goes out of ``port_b`` to the last
address heard on ``port_b`` (and the other way round), so each side sees the
relay as its peer, as it would a NAT or an SBC. Every datagram independently
is dropped with probability ``drop``, delayed by a uniform 0..``jitter``
seconds (which reorders packets whose delays cross) and, with probability
``reorder``, held back behind the next datagram of its direction. The RNG is
seeded (one per direction) so that a run drops and delays the same packets.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field


@dataclass
class RelayStats:
    forwarded: int = 0
    dropped: int = 0
    held: int = 0
    delays: list[float] = field(default_factory=list)


class _Leg(asyncio.DatagramProtocol):
    def __init__(self, relay: ImpairedRelay, name: str) -> None:
        self.relay = relay
        self.name = name
        self.transport: asyncio.DatagramTransport | None = None
        self.peer: tuple[str, int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        self.peer = addr
        self.relay._forward(self.name, data)


class ImpairedRelay:
    def __init__(self, *, drop: float = 0.05, jitter: float = 0.06, reorder: float = 0.05, seed: int = 7,
                 host: str = "127.0.0.1") -> None:
        self.drop = drop
        self.jitter = jitter
        self.reorder = reorder
        self.host = host
        # one RNG per direction: what happens to each stream does not depend on how the two interleave
        self._rng = {"a": random.Random(seed), "b": random.Random(seed + 1)}
        self._legs: dict[str, _Leg] = {}
        self._held: dict[str, bytes | None] = {"a": None, "b": None}
        self.stats = {"a": RelayStats(), "b": RelayStats()}  # keyed by the leg the packets came in on

    async def start(self) -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        for name in ("a", "b"):
            _, proto = await loop.create_datagram_endpoint(lambda n=name: _Leg(self, n), local_addr=(self.host, 0))
            self._legs[name] = proto
        return self.port("a"), self.port("b")

    def set_peers(self, a: tuple[str, int], b: tuple[str, int]) -> None:
        """Where each leg sends before it has heard from its side (then it follows the source)."""
        self._legs["a"].peer = a
        self._legs["b"].peer = b

    def port(self, name: str) -> int:
        t = self._legs[name].transport
        assert t is not None
        return int(t.get_extra_info("sockname")[1])

    def close(self) -> None:
        for leg in self._legs.values():
            if leg.transport is not None:
                leg.transport.close()

    def _forward(self, src: str, data: bytes) -> None:
        st = self.stats[src]
        rng = self._rng[src]
        if rng.random() < self.drop:
            st.dropped += 1
            return
        held = self._held[src]
        if held is None and rng.random() < self.reorder:
            # hold this one back: it leaves right after the next datagram of this direction
            self._held[src] = data
            st.held += 1
            return
        self._held[src] = None
        self._schedule(src, data)
        if held is not None:
            self._schedule(src, held)

    def _schedule(self, src: str, data: bytes) -> None:
        delay = self._rng[src].uniform(0.0, self.jitter)
        self.stats[src].delays.append(delay)
        asyncio.get_running_loop().call_later(delay, self._emit, src, data)

    def _emit(self, src: str, data: bytes) -> None:
        out = self._legs["b" if src == "a" else "a"]
        if out.transport is None or out.peer is None or out.transport.is_closing():
            return
        out.transport.sendto(data, out.peer)
        self.stats[src].forwarded += 1
