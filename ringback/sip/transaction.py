"""SIP transactions (RFC 3261 section 17, with the RFC 6026 Accepted state), sans-IO.

Each transaction is fed messages and `now`, queues datagrams in `outgoing` (all for `addr`) and returns
what the transaction user must hear.  Timers are absolute deadlines; the owner calls `handle_timer(now)`
when `next_deadline()` has passed.  Over reliable transports (TCP) nothing is retransmitted and the
absorbing timers D, I, J, K are zero.
"""

from __future__ import annotations

from dataclasses import dataclass

from ringback.sip.message import BRANCH_COOKIE, Request, Response

Addr = tuple[str, int]


@dataclass(frozen=True)
class TimerConfig:
    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    @classmethod
    def scaled(cls, t1: float) -> TimerConfig:
        """Keep RFC proportions (T2 = 8*T1, T4 = 10*T1) so tests can shrink every timer at once."""
        return cls(t1, 8 * t1, 10 * t1)


@dataclass(frozen=True)
class Timeout:
    """The transaction gave up (timer B, F or H): the TU treats it as a 408."""


TxEvent = Response | Request | Timeout


def request_key(req: Request) -> tuple[str, str]:
    """Server-side matching key (RFC 3261 17.2.3); ACK matches its INVITE."""
    via = req.top_via
    method = "INVITE" if req.method == "ACK" else req.method
    branch = via.branch or ""
    if branch.startswith(BRANCH_COOKIE):
        return (f"{branch}|{via.host}:{via.port}", method)
    # RFC 2543 peers: fall back to the dialog identifiers
    return (f"{req.call_id}|{req.from_.tag}|{req.cseq[0]}|{via.host}:{via.port}|{branch}", method)


def response_key(resp: Response) -> tuple[str, str]:
    """Client-side matching key (RFC 3261 17.1.3)."""
    return (resp.top_via.branch or "", resp.cseq[1])


class Transaction:
    def __init__(self, addr: Addr, transport: str, cfg: TimerConfig) -> None:
        self.addr = addr
        self.transport = transport
        self.reliable = transport.lower() != "udp"
        self.cfg = cfg
        self.state = ""
        self.outgoing: list[bytes] = []
        self.deadlines: dict[str, float] = {}
        self.intervals: dict[str, float] = {}
        self.table_key: tuple[str, ...] = ()  # its key in the owner's table

    @property
    def terminated(self) -> bool:
        return self.state == "terminated"

    def next_deadline(self) -> float | None:
        return min(self.deadlines.values()) if self.deadlines else None

    def _terminate(self) -> None:
        self.state = "terminated"
        self.deadlines.clear()

    def _arm(self, name: str, now: float, delay: float) -> None:
        self.deadlines[name] = now + delay
        self.intervals[name] = delay

    def handle_timer(self, now: float) -> list[TxEvent]:
        events: list[TxEvent] = []
        # fire in deadline order, so B beats a simultaneous A
        for name, when in sorted(self.deadlines.items(), key=lambda kv: kv[1]):
            if when <= now and self.deadlines.get(name) == when:
                del self.deadlines[name]
                events += self._fire(name, now)
        return events

    def _fire(self, name: str, now: float) -> list[TxEvent]:
        raise NotImplementedError


class ClientTransaction(Transaction):
    def __init__(self, request: Request, addr: Addr, transport: str, cfg: TimerConfig, now: float) -> None:
        super().__init__(addr, transport, cfg)
        self.request = request
        self.key = (request.top_via.branch or "", request.method)
        self.data = bytes(request)
        self.outgoing.append(self.data)
        self.last_response: Response | None = None


class ClientInviteTransaction(ClientTransaction):
    def __init__(self, request: Request, addr: Addr, transport: str, cfg: TimerConfig, now: float) -> None:
        super().__init__(request, addr, transport, cfg, now)
        self.state = "calling"
        self.ack: bytes | None = None
        self.ack2xx: bytes | None = None  # set by the TU, to re-ACK 2xx retransmissions after the call is gone
        if not self.reliable:
            self._arm("A", now, cfg.t1)
        self._arm("B", now, 64 * cfg.t1)

    def receive_response(self, resp: Response, now: float) -> list[TxEvent]:
        code = resp.status
        if self.state in ("calling", "proceeding"):
            self.last_response = resp
            if code < 200:
                self.state = "proceeding"
                self.deadlines.pop("A", None)
                return [resp]
            self.deadlines.clear()
            if code < 300:
                self.state = "accepted"  # RFC 6026: keep absorbing 2xx retransmissions for the TU
                self._arm("M", now, 64 * self.cfg.t1)
                return [resp]
            self.state = "completed"
            self.ack = bytes(self._make_ack(resp))
            self.outgoing.append(self.ack)
            self._arm("D", now, 0 if self.reliable else 64 * self.cfg.t1)
            return [resp]
        if self.state == "accepted" and 200 <= code < 300:
            return [resp]  # retransmitted 2xx: the dialog re-sends its ACK
        if self.state == "completed" and code >= 300 and self.ack is not None:
            self.outgoing.append(self.ack)
        return []

    def _make_ack(self, resp: Response) -> Request:
        """ACK for a non-2xx final response belongs to the INVITE transaction (RFC 3261 17.1.1.3)."""
        req = self.request
        headers = [("Via", req.get_all("Via")[0])]
        headers += [("Route", r) for r in req.get_all("Route")]
        headers += [
            ("Max-Forwards", "70"),
            ("From", req.get("From") or ""),
            ("To", resp.get("To") or ""),
            ("Call-ID", req.call_id),
            ("CSeq", f"{req.cseq[0]} ACK"),
        ]
        return Request("ACK", req.uri, headers)

    def _fire(self, name: str, now: float) -> list[TxEvent]:
        if name == "A":
            self.outgoing.append(self.data)
            self._arm("A", now, self.intervals["A"] * 2)
            return []
        if name == "B":
            self._terminate()
            return [Timeout()]
        self._terminate()  # D or M
        return []


class ClientNonInviteTransaction(ClientTransaction):
    def __init__(self, request: Request, addr: Addr, transport: str, cfg: TimerConfig, now: float) -> None:
        super().__init__(request, addr, transport, cfg, now)
        self.state = "trying"
        if not self.reliable:
            self._arm("E", now, cfg.t1)
        self._arm("F", now, 64 * cfg.t1)

    def receive_response(self, resp: Response, now: float) -> list[TxEvent]:
        if self.state not in ("trying", "proceeding"):
            return []
        self.last_response = resp
        if resp.status < 200:
            self.state = "proceeding"
            return [resp]
        self.deadlines.clear()
        self.state = "completed"
        self._arm("K", now, 0 if self.reliable else self.cfg.t4)
        return [resp]

    def _fire(self, name: str, now: float) -> list[TxEvent]:
        if name == "E":
            self.outgoing.append(self.data)
            nxt = self.cfg.t2 if self.state == "proceeding" else min(self.intervals["E"] * 2, self.cfg.t2)
            self._arm("E", now, nxt)
            return []
        if name == "F":
            self._terminate()
            return [Timeout()]
        self._terminate()  # K
        return []


class ServerTransaction(Transaction):
    def __init__(self, request: Request, addr: Addr, transport: str, cfg: TimerConfig) -> None:
        super().__init__(addr, transport, cfg)
        self.request = request
        self.key = request_key(request)
        self.last_response: bytes | None = None
        self.final_code: int | None = None

    def _send(self, resp: Response) -> None:
        self.last_response = bytes(resp)
        self.outgoing.append(self.last_response)


class ServerInviteTransaction(ServerTransaction):
    def __init__(self, request: Request, addr: Addr, transport: str, cfg: TimerConfig, now: float,
                 trying: Response | None = None) -> None:
        super().__init__(request, addr, transport, cfg)
        self.state = "proceeding"
        if trying is not None:
            self._send(trying)

    def send_response(self, resp: Response, now: float) -> None:
        if self.state != "proceeding":
            return
        self._send(resp)
        if resp.status < 200:
            return
        self.final_code = resp.status
        if resp.status < 300:
            # the TU retransmits the 2xx itself; this state only absorbs INVITE retransmissions
            self.state = "accepted"
            self._arm("L", now, 64 * self.cfg.t1)
            return
        self.state = "completed"
        if not self.reliable:
            self._arm("G", now, self.cfg.t1)
        self._arm("H", now, 64 * self.cfg.t1)

    def receive_request(self, req: Request, now: float) -> list[TxEvent]:
        if req.method == "INVITE":
            if self.state in ("proceeding", "completed") and self.last_response is not None:
                self.outgoing.append(self.last_response)
            return []
        if req.method == "ACK" and self.state == "completed":
            self.state = "confirmed"
            self.deadlines.clear()
            self._arm("I", now, 0 if self.reliable else self.cfg.t4)
        return []

    def _fire(self, name: str, now: float) -> list[TxEvent]:
        if name == "G":
            if self.last_response is not None:
                self.outgoing.append(self.last_response)
            self._arm("G", now, min(self.intervals["G"] * 2, self.cfg.t2))
            return []
        if name == "H":
            self._terminate()
            return [Timeout()]
        self._terminate()  # I or L
        return []


class ServerNonInviteTransaction(ServerTransaction):
    def __init__(self, request: Request, addr: Addr, transport: str, cfg: TimerConfig, now: float) -> None:
        super().__init__(request, addr, transport, cfg)
        self.state = "trying"

    def send_response(self, resp: Response, now: float) -> None:
        if self.state not in ("trying", "proceeding"):
            return
        self._send(resp)
        if resp.status < 200:
            self.state = "proceeding"
            return
        self.final_code = resp.status
        self.state = "completed"
        self._arm("J", now, 0 if self.reliable else 64 * self.cfg.t1)

    def receive_request(self, req: Request, now: float) -> list[TxEvent]:
        if self.last_response is not None and self.state in ("proceeding", "completed"):
            self.outgoing.append(self.last_response)
        return []

    def _fire(self, name: str, now: float) -> list[TxEvent]:
        self._terminate()  # J
        return []
