"""A deterministic simulated network for sans-IO SipEndpoints: virtual time, latency, seeded loss.

Used by the tests (lossy-network calls, timer schedules) and handy for anyone testing against the core
without sockets.  `on_event(ep, event)` lets a test act like an application (answer, hang up, ...).
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Callable
from typing import Any

from ringback.sip.auth import DigestVerifier
from ringback.sip.endpoint import SipEndpoint
from ringback.sip.errors import ParseError
from ringback.sip.events import Event
from ringback.sip.message import BRANCH_COOKIE, Request, Response, Via, parse_message
from ringback.sip.uri import SipUri, parse_name_addr, parse_uri

Addr = tuple[str, int]


class SimNetwork:
    def __init__(self, *, loss: float = 0.0, latency: float = 0.01, seed: int = 0, start: float = 1000.0) -> None:
        self.loss = loss
        self.latency = latency
        self.rng = random.Random(seed)
        self.now = start
        self.endpoints: dict[Addr, Any] = {}  # SipEndpoint, or anything with its surface (SimProxy)
        self.events: dict[Addr, list[Event]] = {}
        self.on_event: Callable[[SipEndpoint, Event], None] | None = None
        self.log: list[tuple[float, Addr, Addr, bytes]] = []  # everything put on the wire
        self.dropped = 0
        self._wire: list[tuple[float, int, bytes, Addr, Addr, str]] = []
        self._seq = 0

    def add(self, ep: Any) -> Any:
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


class SimProxy:
    """A stateless record-routing SIP proxy (RFC 3261 16.11) to put in a SimNetwork path, like Kamailio.

    Initial INVITEs are record-routed (`;lr`) and sent to `forward_to` (or the Request-URI's address);
    requests carrying a Route to us lose it and follow the next Route or the Request-URI (loose
    routing); responses lose our Via and go back to the next one.  `seen` logs every method it relayed.
    """

    def __init__(self, host: str, port: int, *, forward_to: Addr | None = None) -> None:
        self.host = host
        self.port = port
        self.forward_to = forward_to
        self.seen: list[str] = []
        self._out: list[tuple[bytes, Addr, str]] = []

    @property
    def uri(self) -> str:
        return f"sip:{self.host}:{self.port};lr"

    # the SipEndpoint surface SimNetwork drives
    def next_event(self) -> None:
        return None

    def get_timer(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> None:
        return None

    def datagrams_to_send(self, now: float | None = None) -> list[tuple[bytes, Addr, str]]:
        out, self._out = self._out, []
        return out

    def _is_me(self, uri: SipUri) -> bool:
        return uri.addr == (self.host, self.port)

    def receive_datagram(self, data: bytes, addr: Addr, now: float, transport: str = "udp") -> None:
        try:
            msg = parse_message(data)
        except ParseError:
            return
        if isinstance(msg, Response):
            vias = msg.get_all("Via")
            if len(vias) < 2:
                return
            msg.remove("Via")
            msg.headers = [("Via", v) for v in vias[1:]] + msg.headers
            nxt = Via.parse(vias[1])
            host = nxt.params.get("received") or nxt.host
            port = int(nxt.params["rport"]) if nxt.params.get("rport") else (nxt.port or 5060)
            self.seen.append(f"{msg.status} {msg.cseq[1]}")
            self._out.append((bytes(msg), (host, port), transport))
            return
        self.seen.append(msg.method)
        routes = msg.get_all("Route")
        if routes and self._is_me(parse_name_addr(routes[0]).uri):
            routes = routes[1:]
            msg.remove("Route")
            for r in routes:
                msg.add("Route", r)
        if routes:
            dest = parse_name_addr(routes[0]).uri.addr
        elif msg.method == "INVITE" and msg.to.tag is None and self.forward_to is not None:
            dest = self.forward_to
        else:
            dest = parse_uri(msg.uri).addr
        if msg.method == "INVITE" and msg.to.tag is None:
            msg.add("Record-Route", f"<{self.uri}>", first=True)
        # stamp where the request came from, as a stateful proxy would before adding its own Via
        top = msg.top_via
        top.params["received"] = addr[0]
        if "rport" in top.params:
            top.params["rport"] = str(addr[1])
        vias = msg.get_all("Via")
        vias[0] = str(top)
        msg.remove("Via")
        # stateless: the branch is derived from the incoming one, so retransmissions map the same way
        branch = BRANCH_COOKIE + hashlib.sha256(f"{top.branch}|{msg.method}".encode()).hexdigest()[:16]
        if msg.method == "ACK" or msg.method == "CANCEL":
            branch = BRANCH_COOKIE + hashlib.sha256(f"{top.branch}|INVITE".encode()).hexdigest()[:16]
        new = [("Via", f"SIP/2.0/{transport.upper()} {self.host}:{self.port};branch={branch}")]
        new += [("Via", v) for v in vias]
        msg.headers = new + msg.headers
        msg._cache.clear()
        self._out.append((bytes(msg), dest, transport))


class SimRegistrar:
    """A registrar with digest auth for SimNetwork tests: it answers REGISTER and records bindings.

    `bindings` maps the AOR to (contact, absolute expiry); `min_expires` provokes 423 below it.
    """

    def __init__(self, host: str, port: int, *, credentials: dict[str, str] | None = None,
                 max_expires: int = 3600, min_expires: int = 0, realm: str = "trunk") -> None:
        self.host = host
        self.port = port
        self.verifier = DigestVerifier(realm, credentials) if credentials else None
        self.max_expires = max_expires
        self.min_expires = min_expires
        self.bindings: dict[str, tuple[str, float]] = {}
        self.requests: list[Request] = []
        self.down = False  # answer nothing (a dead registrar)
        self._out: list[tuple[bytes, Addr, str]] = []

    def next_event(self) -> None:
        return None

    def get_timer(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> None:
        return None

    def datagrams_to_send(self, now: float | None = None) -> list[tuple[bytes, Addr, str]]:
        out, self._out = self._out, []
        return out

    def receive_datagram(self, data: bytes, addr: Addr, now: float, transport: str = "udp") -> None:
        try:
            req = parse_message(data)
        except ParseError:
            return
        if not isinstance(req, Request) or req.method != "REGISTER" or self.down:
            return
        self.requests.append(req)
        extra: list[tuple[str, str]] = []
        if self.verifier is not None and self.verifier.verify(req.get("Authorization"), "REGISTER") is None:
            code, extra = 401, [("WWW-Authenticate", self.verifier.challenge())]
        else:
            expires = int(req.get("Expires") or "3600")
            aor = str(req.to.uri)
            contact = req.get_all("Contact")[0]
            if 0 < expires < self.min_expires:
                code, extra = 423, [("Min-Expires", str(self.min_expires))]
            elif expires == 0:
                self.bindings.pop(aor, None)
                code = 200
            else:
                granted = min(expires, self.max_expires)
                self.bindings[aor] = (contact, now + granted)
                code, extra = 200, [("Contact", f"{contact};expires={granted}")]
        headers = [("Via", v) for v in req.get_all("Via")]
        to = req.get("To") or ""
        headers += [("From", req.get("From") or ""), ("To", f"{to};tag=reg1"), ("Call-ID", req.call_id),
                    ("CSeq", req.get("CSeq") or "")] + extra
        self._out.append((bytes(Response(code, "OK" if code == 200 else "No", headers)), addr, transport))
