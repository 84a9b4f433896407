"""A deterministic simulated network for sans-IO SipEndpoints: virtual time, latency, seeded loss.

Used by the tests (lossy-network calls, timer schedules) and handy for anyone testing against the core
without sockets.  `on_event(ep, event)` lets a test act like an application (answer, hang up, ...).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable

from ringback.sip.endpoint import SipEndpoint
from ringback.sip.events import Event

Addr = tuple[str, int]


class SimNetwork:
    def __init__(self, *, loss: float = 0.0, latency: float = 0.01, seed: int = 0, start: float = 1000.0) -> None:
        self.loss = loss
        self.latency = latency
        self.rng = random.Random(seed)
        self.now = start
        self.endpoints: dict[Addr, SipEndpoint] = {}
        self.events: dict[Addr, list[Event]] = {}
        self.on_event: Callable[[SipEndpoint, Event], None] | None = None
        self.log: list[tuple[float, Addr, Addr, bytes]] = []  # everything put on the wire
        self.dropped = 0
        self._wire: list[tuple[float, int, bytes, Addr, Addr, str]] = []
        self._seq = 0

    def add(self, ep: SipEndpoint) -> SipEndpoint:
        self.endpoints[(ep.host, ep.port)] = ep
        self.events[(ep.host, ep.port)] = []
        return ep

    def inject(self, data: bytes, src: Addr, dst: Addr, transport: str = "udp") -> None:
        """Put a datagram from a scripted peer on the wire (it obeys latency, not loss)."""
        self._seq += 1
        heapq.heappush(self._wire, (self.now + self.latency, self._seq, data, src, dst, transport))

    def flush(self) -> None:
        """Collect what every endpoint wants to send and hand out its events."""
        progress = True
        while progress:
            progress = False
            for addr, ep in self.endpoints.items():
                for data, dst, transport in ep.datagrams_to_send(self.now):
                    progress = True
                    self.log.append((self.now, addr, dst, data))
                    if transport == "udp" and self.loss and self.rng.random() < self.loss:
                        self.dropped += 1
                        continue
                    self._seq += 1
                    heapq.heappush(self._wire, (self.now + self.latency, self._seq, data, addr, dst, transport))
                while (ev := ep.next_event()) is not None:
                    progress = True
                    self.events[addr].append(ev)
                    if self.on_event is not None:
                        self.on_event(ep, ev)

    def next_time(self) -> float | None:
        times = [t for ep in self.endpoints.values() if (t := ep.get_timer()) is not None]
        if self._wire:
            times.append(self._wire[0][0])
        return min(times) if times else None

    def step(self) -> bool:
        self.flush()
        t = self.next_time()
        if t is None:
            return False
        self.now = max(self.now, t)
        while self._wire and self._wire[0][0] <= self.now:
            _, _, data, src, dst, transport = heapq.heappop(self._wire)
            ep = self.endpoints.get(dst)
            if ep is not None:
                ep.receive_datagram(data, src, self.now, transport)
        for ep in self.endpoints.values():
            t2 = ep.get_timer()
            if t2 is not None and t2 <= self.now:
                ep.handle_timer(self.now)
        self.flush()
        return True

    def run(self, until: float | None = None, *, stop: Callable[[], bool] | None = None,
            max_steps: int = 1_000_000) -> None:
        """Advance virtual time until nothing is pending, `until`, or `stop()` is true."""
        for _ in range(max_steps):
            if stop is not None and stop():
                return
            t = self.next_time()
            if t is None or (until is not None and t > until):
                if until is not None:
                    self.now = max(self.now, until)
                return
            self.step()
        raise RuntimeError("simulation did not settle")

    def sent_by(self, addr: Addr) -> list[bytes]:
        return [data for _, src, _, data in self.log if src == addr]
