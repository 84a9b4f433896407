"""The SIP user agent core, sans-IO: transactions + dialogs + calls behind one aioquic-style surface.

    ep.receive_datagram(data, addr, now, transport)   feed bytes
    ep.invite(...) / ep.ringing(...) / ep.answer(...)  act (each takes `now`)
    ep.datagrams_to_send()                            -> [(bytes, (host, port), transport)]
    ep.next_event()                                   -> event or None (ringback.sip.events)
    ep.get_timer() / ep.handle_timer(now)             drive the RFC 3261 timers

One call = one INVITE dialog, keyed by Call-ID.  A call leaves `calls` as soon as it is over; the
transactions that finish it leave `transactions` when their own absorbing timers expire.
"""

from __future__ import annotations

import heapq
import itertools
import secrets
from collections import deque
from dataclasses import dataclass, field

from ringback.sip.auth import DigestVerifier, build_authorization, parse_challenge
from ringback.sip.dialog import Dialog
from ringback.sip.errors import ParseError
from ringback.sip.events import (
    Answered,
    Cancelled,
    Dtmf,
    Event,
    Failed,
    Hangup,
    IncomingInvite,
    Ringing,
    Terminated,
)
from ringback.sip.message import Request, Response, new_branch, new_tag, parse_message
from ringback.sip.transaction import (
    Addr,
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    ClientTransaction,
    ServerInviteTransaction,
    ServerNonInviteTransaction,
    ServerTransaction,
    Timeout,
    TimerConfig,
    Transaction,
    TxEvent,
    request_key,
    response_key,
)
from ringback.sip.uri import parse_name_addr, parse_uri, split_quoted

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, NOTIFY"
REASONS = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued", 183: "Session Progress",
    200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 407: "Proxy Authentication Required", 408: "Request Timeout",
    420: "Bad Extension", 480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    482: "Loop Detected", 483: "Too Many Hops", 484: "Address Incomplete", 486: "Busy Here",
    487: "Request Terminated", 488: "Not Acceptable Here", 491: "Request Pending", 500: "Server Internal Error",
    501: "Not Implemented", 503: "Service Unavailable", 600: "Busy Everywhere", 603: "Decline",
    604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}
DTMF_SIGNALS = {str(i): str(i) for i in range(10)} | {"10": "*", "11": "#", "12": "A", "13": "B", "14": "C",
                                                     "15": "D"}
DTMF_DIGITS = set("0123456789*#ABCD")


def reason_for(code: int) -> str:
    return REASONS.get(code, "Unknown")


@dataclass
class Call:
    call_id: str
    role: str  # "uac" | "uas"
    addr: Addr  # where the INVITE went / came from
    transport: str
    invite: Request
    state: str = "calling"  # calling, early, answered (uas: 2xx sent), confirmed, ending
    dialog: Dialog | None = None
    invite_key: tuple[str, str] | None = None
    local_sdp: bytes | None = None
    remote_sdp: bytes | None = None
    auth: tuple[str, str] | None = None
    auth_tries: int = 0
    provisional: bool = False
    cancel_requested: bool = False
    cancel_sent: bool = False
    reported: bool = False  # a final event (Answered excluded) went up
    # UAS 2xx retransmission (RFC 3261 13.3.1.4) until the ACK arrives
    ok: bytes | None = None
    ok_cseq: int = 0
    ok_next: float | None = None
    ok_interval: float = 0.0
    ok_give_up: float = 0.0
    ack: bytes | None = None
    bye_key: tuple[str, str] | None = None
    extra: dict[str, object] = field(default_factory=dict)


class SipEndpoint:
    def __init__(self, host: str, port: int, *, advertise: str | None = None, user_agent: str = "ringback",
                 t1: float = 0.5, credentials: dict[str, str] | None = None, realm: str = "ringback") -> None:
        self.host = host
        self.port = port
        self.advertise = advertise
        self.user_agent = user_agent
        self.cfg = TimerConfig.scaled(t1)
        self.verifier = DigestVerifier(realm, dict(credentials)) if credentials else None
        self.calls: dict[str, Call] = {}
        self.transactions: dict[tuple[str, ...], Transaction] = {}
        self.stats: dict[str, int] = {
            "received": 0, "sent": 0, "malformed": 0, "stray_responses": 0, "retransmissions": 0,
        }
        self._events: deque[Event] = deque()
        self._out: list[tuple[bytes, Addr, str]] = []
        # lazy timer heap: an entry is live only while its object still has exactly that deadline
        self._heap: list[tuple[float, int, Transaction | Call]] = []
        self._seq = itertools.count()

    # ------------------------------------------------------------------ surface
    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def datagrams_to_send(self, now: float | None = None) -> list[tuple[bytes, Addr, str]]:
        out, self._out = self._out, []
        self.stats["sent"] += len(out)
        return out

    def _live(self, when: float, obj: Transaction | Call) -> bool:
        if isinstance(obj, Call):
            return self.calls.get(obj.call_id) is obj and obj.ok_next == when
        return self.transactions.get(obj.table_key) is obj and obj.next_deadline() == when

    def get_timer(self) -> float | None:
        heap = self._heap
        while heap and not self._live(heap[0][0], heap[0][2]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def handle_timer(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            when, _, obj = heapq.heappop(heap)
            if not self._live(when, obj):
                continue
            if isinstance(obj, Call):
                self._ok_timer(obj, now)
                continue
            before = len(obj.outgoing)
            events = obj.handle_timer(now)
            self.stats["retransmissions"] += max(0, len(obj.outgoing) - before)
            self._drain(obj)
            for ev in events:
                self._tx_event(obj, ev, now)

    def _schedule(self, when: float | None, obj: Transaction | Call) -> None:
        if when is not None:
            heapq.heappush(self._heap, (when, next(self._seq), obj))

    @property
    def idle(self) -> bool:
        return not self.calls and not self.transactions

    def contact_for(self, transport: str) -> str:
        t = ";transport=tcp" if transport == "tcp" else ""
        return f"<sip:{self.user_agent}@{self._hostport}{t}>"

    # ------------------------------------------------------------------ UAC actions
    def invite(self, target: str, *, from_uri: str, sdp: bytes, now: float, auth: tuple[str, str] | None = None,
               headers: dict[str, str] | None = None, call_id: str | None = None) -> str:
        uri = parse_uri(target)
        host, port = uri.addr
        transport = uri.transport
        call_id = call_id or f"{secrets.token_hex(12)}@{self._host}"
        from_value = from_uri if "<" in from_uri else f"<{from_uri}>"
        to_uri = parse_uri(target)
        to_uri.params.pop("transport", None)
        hdrs = [
            ("Via", self._via(transport)),
            ("Max-Forwards", "70"),
            ("From", f"{from_value};tag={new_tag()}"),
            ("To", f"<{to_uri}>"),
            ("Call-ID", call_id),
            ("CSeq", "1 INVITE"),
            ("Contact", self.contact_for(transport)),
            ("User-Agent", self.user_agent),
            ("Allow", ALLOW),
        ]
        hdrs += list((headers or {}).items())
        if sdp:
            hdrs.append(("Content-Type", "application/sdp"))
        req = Request("INVITE", str(uri), hdrs, sdp)
        call = Call(call_id, "uac", (host, port), transport, req, local_sdp=sdp, auth=auth)
        self.calls[call_id] = call
        tx = self._start_client(req, (host, port), transport, now)
        call.invite_key = tx.key
        return call_id

    def cancel(self, call_id: str, now: float) -> None:
        call = self.calls.get(call_id)
        if call is None or call.role != "uac" or call.state not in ("calling", "early"):
            return
        call.cancel_requested = True
        if call.provisional:
            self._send_cancel(call, now)
        # else: RFC 3261 9.1 - wait for a provisional response before CANCELling

    def bye(self, call_id: str, now: float) -> None:
        call = self.calls.get(call_id)
        if call is None:
            return
        if call.role == "uac" and call.state in ("calling", "early"):
            self.cancel(call_id, now)
            return
        if call.role == "uas" and call.state in ("calling", "early"):
            self.reject(call_id, 480, now=now)
            return
        if call.state in ("answered", "confirmed"):
            self._report(call, Hangup(False, call_id=call_id))
            self._send_bye(call, now)

    # ------------------------------------------------------------------ UAS actions
    def ringing(self, call_id: str, code: int = 180, sdp: bytes | None = None, *, now: float) -> None:
        call = self.calls.get(call_id)
        if call is None or call.role != "uas" or call.state not in ("calling", "early"):
            return
        call.state = "early"
        extra = [("Contact", self.contact_for(call.transport))]
        if sdp:
            extra.append(("Content-Type", "application/sdp"))
        self._respond_invite(call, code, now, extra, sdp or b"")

    def answer(self, call_id: str, sdp: bytes, *, now: float) -> None:
        call = self.calls.get(call_id)
        if call is None or call.role != "uas" or call.state not in ("calling", "early"):
            return
        call.local_sdp = sdp
        call.state = "answered"
        resp = self._invite_response(call, 200, [("Contact", self.contact_for(call.transport)),
                                                 ("Content-Type", "application/sdp")], sdp)
        self._send_ok(call, call.invite, resp, now)

    def reject(self, call_id: str, code: int, reason: str | None = None, *, now: float) -> None:
        call = self.calls.get(call_id)
        if call is None or call.role != "uas" or call.state not in ("calling", "early"):
            return
        self._respond_invite(call, code, now, [], b"", reason)
        self._forget(call)

    # ------------------------------------------------------------------ input
    def receive_datagram(self, data: bytes, addr: Addr, now: float, transport: str = "udp") -> None:
        self.stats["received"] += 1
        try:
            msg = parse_message(data)
            if isinstance(msg, Request):
                self._on_request(msg, addr, transport.lower(), now)
            else:
                self._on_response(msg, now)
        except ParseError:
            self.stats["malformed"] += 1

    # ------------------------------------------------------------------ internals: plumbing
    @property
    def _host(self) -> str:
        h = self.advertise or self.host
        return f"[{h}]" if ":" in h and not h.startswith("[") else h

    @property
    def _hostport(self) -> str:
        return f"{self._host}:{self.port}"

    def _via(self, transport: str) -> str:
        return f"SIP/2.0/{transport.upper()} {self._hostport};branch={new_branch()};rport"

    def _drain(self, tx: Transaction) -> None:
        """After any change to a transaction: send its output, re-arm its timer or forget it."""
        for data in tx.outgoing:
            self._out.append((data, tx.addr, tx.transport))
        tx.outgoing.clear()
        if tx.terminated:
            if self.transactions.get(tx.table_key) is tx:
                del self.transactions[tx.table_key]
        else:
            self._schedule(tx.next_deadline(), tx)

    def _send(self, data: bytes, addr: Addr, transport: str) -> None:
        self._out.append((data, addr, transport))

    def _emit(self, ev: Event) -> None:
        self._events.append(ev)

    def _report(self, call: Call, ev: Event) -> None:
        """Final events go up once per call, whatever races happen below."""
        if not call.reported:
            call.reported = True
            self._emit(ev)

    def _forget(self, call: Call) -> None:
        if self.calls.pop(call.call_id, None) is not None:
            self._emit(Terminated(call.call_id))

    def _start_client(self, req: Request, addr: Addr, transport: str, now: float) -> ClientTransaction:
        cls = ClientInviteTransaction if req.method == "INVITE" else ClientNonInviteTransaction
        tx = cls(req, addr, transport, self.cfg, now)
        tx.table_key = ("c", *tx.key)
        self.transactions[tx.table_key] = tx
        self._drain(tx)
        return tx

    def _tx_event(self, tx: Transaction, ev: TxEvent, now: float) -> None:
        if isinstance(tx, ClientTransaction):
            if isinstance(ev, Response):
                self._client_response(tx, ev, now)
            elif isinstance(ev, Timeout):
                self._client_timeout(tx, now)
        elif isinstance(tx, ServerInviteTransaction) and isinstance(ev, Timeout):
            pass  # timer H: the non-2xx final was never ACKed; nothing left to clean up

    # ------------------------------------------------------------------ responses
    def _on_response(self, resp: Response, now: float) -> None:
        key = response_key(resp)
        tx = self.transactions.get(("c", *key))  # type: ignore[arg-type]
        if not isinstance(tx, ClientTransaction):
            self.stats["stray_responses"] += 1
            return
        events = tx.receive_response(resp, now)  # type: ignore[attr-defined]
        self._drain(tx)
        for ev in events:
            self._tx_event(tx, ev, now)

    def _client_timeout(self, tx: ClientTransaction, now: float) -> None:
        call = self.calls.get(tx.request.call_id)
        if call is None:
            return
        method = tx.request.method
        if method == "INVITE" and call.state in ("calling", "early"):
            code = 487 if call.cancel_requested else 408
            self._report(call, Failed(code, reason_for(code), call_id=call.call_id))
            self._forget(call)
        elif method == "BYE":
            self._forget(call)

    def _client_response(self, tx: ClientTransaction, resp: Response, now: float) -> None:
        method = tx.request.method
        call = self.calls.get(tx.request.call_id)
        if method == "INVITE":
            self._on_invite_response(call, tx, resp, now)
        elif method == "BYE" and call is not None and resp.status >= 200:
            if resp.status in (401, 407) and self._retry_with_auth(call, tx.request, resp, now):
                return
            self._forget(call)
        # CANCEL, INFO, OPTIONS answers need no action

    def _on_invite_response(self, call: Call | None, tx: ClientTransaction, resp: Response, now: float) -> None:
        code = resp.status
        if call is not None and call.dialog is not None and tx.key != call.invite_key and tx.request.to.tag:
            if 200 <= code < 300:  # our re-INVITE was accepted: ACK it within the dialog
                ack = self._build_ack(call.dialog, resp)
                self._send(bytes(ack), *self._hop_of(call))
            return
        if call is None or tx.key != call.invite_key:
            if 200 <= code < 300:
                self._ack_and_bye_stray(tx, resp, now)
            return
        if code < 200:
            call.provisional = True
            if call.cancel_requested and not call.cancel_sent:
                self._send_cancel(call, now)
            if code > 100 and call.state in ("calling", "early"):
                call.state = "early"
                if resp.to.tag and call.dialog is None:
                    call.dialog = Dialog.as_uac(call.invite, resp)
                if not call.cancel_requested:
                    self._emit(Ringing(code, resp.body or None, call_id=call.call_id))
            return
        if code < 300:
            if call.state in ("confirmed", "ending") and call.dialog and resp.to.tag == call.dialog.remote_tag:
                if call.ack is not None:
                    self._send(call.ack, *self._hop_of(call))  # our ACK was lost: the 2xx came again
                return
            if call.state not in ("calling", "early") or call.cancel_requested:
                # answered too late (CANCEL raced it) or a second fork answered: ACK and hang up
                self._ack_and_bye_stray(tx, resp, now)
                if call.cancel_requested and call.state in ("calling", "early"):
                    self._report(call, Failed(487, reason_for(487), call_id=call.call_id))
                    self._forget(call)
                return
            call.dialog = Dialog.as_uac(call.invite, resp)
            call.state = "confirmed"
            call.remote_sdp = resp.body or None
            call.ack = bytes(self._build_ack(call.dialog, resp))
            if isinstance(tx, ClientInviteTransaction):
                tx.ack2xx = call.ack
            self._send(call.ack, *self._hop_of(call))
            self._emit(Answered(resp.body, call_id=call.call_id))
            return
        if code in (401, 407) and not call.cancel_requested and self._retry_with_auth(call, call.invite, resp, now):
            return
        final = 487 if call.cancel_requested else code
        reason = reason_for(487) if call.cancel_requested else (resp.reason or reason_for(code))
        self._report(call, Failed(final, reason, call_id=call.call_id))
        self._forget(call)

    def _retry_with_auth(self, call: Call, orig: Request, resp: Response, now: float) -> bool:
        if call.auth is None or call.auth_tries >= 2:
            return False
        hname = "WWW-Authenticate" if resp.status == 401 else "Proxy-Authenticate"
        aname = "Authorization" if resp.status == 401 else "Proxy-Authorization"
        challenge_v = resp.get(hname)
        if challenge_v is None:
            return False
        try:
            challenge = parse_challenge(challenge_v)
            value = build_authorization(challenge, username=call.auth[0], password=call.auth[1],
                                        method=orig.method, uri=orig.uri)
        except ParseError:
            return False
        if call.auth_tries and challenge.get("stale", "").lower() != "true":
            return False  # the same credentials failed once already
        call.auth_tries += 1
        req = Request(orig.method, orig.uri, list(orig.headers), orig.body)
        req.set("Via", self._via(call.transport if orig.method == "INVITE" else self._hop(call)[2]))
        req.remove("Authorization")
        req.remove("Proxy-Authorization")
        req.add(aname, value)
        if call.dialog is not None and orig.method != "INVITE":
            call.dialog.local_cseq += 1
            cseq = call.dialog.local_cseq
        else:
            cseq = orig.cseq[0] + 1
        req.set("CSeq", f"{cseq} {orig.method}")
        if orig.method == "INVITE":
            call.invite = req
            call.provisional = False
            tx = self._start_client(req, call.addr, call.transport, now)
            call.invite_key = tx.key
        else:
            host, port, transport = self._hop(call)
            tx = self._start_client(req, (host, port), transport, now)
            call.bye_key = tx.key
        return True

    def _build_ack(self, dialog: Dialog, resp: Response) -> Request:
        """ACK for a 2xx: its own transaction, the dialog's route set (RFC 3261 13.2.2.4)."""
        transport = dialog.next_hop()[2]
        return dialog.create_request("ACK", self._via(transport), cseq=resp.cseq[0],
                                     extra=[("User-Agent", self.user_agent)])

    def _ack_and_bye_stray(self, tx: ClientTransaction, resp: Response, now: float) -> None:
        ack = tx.ack2xx if isinstance(tx, ClientInviteTransaction) else None
        if ack is not None and resp.to.tag == _ack_to_tag(ack):
            self._send(ack, tx.addr, tx.transport)
            return
        dialog = Dialog.as_uac(tx.request, resp)
        host, port, transport = dialog.next_hop()
        self._send(bytes(self._build_ack(dialog, resp)), (host, port), transport)
        bye = dialog.create_request("BYE", self._via(transport), extra=[("User-Agent", self.user_agent)])
        self._start_client(bye, (host, port), transport, now)

    def _send_cancel(self, call: Call, now: float) -> None:
        call.cancel_sent = True
        inv = call.invite
        headers = [("Via", inv.get_all("Via")[0])]
        headers += [("Route", r) for r in inv.get_all("Route")]
        headers += [("Max-Forwards", "70"), ("From", inv.get("From") or ""), ("To", inv.get("To") or ""),
                    ("Call-ID", inv.call_id), ("CSeq", f"{inv.cseq[0]} CANCEL"),
                    ("User-Agent", self.user_agent)]
        self._start_client(Request("CANCEL", inv.uri, headers), call.addr, call.transport, now)

    def _hop(self, call: Call) -> tuple[str, int, str]:
        assert call.dialog is not None
        host, port, transport = call.dialog.next_hop()
        if call.transport == "tcp":
            transport = "tcp"
        return host, port, transport

    def _hop_of(self, call: Call) -> tuple[Addr, str]:
        host, port, transport = self._hop(call)
        return (host, port), transport

    def _send_bye(self, call: Call, now: float) -> None:
        assert call.dialog is not None
        call.state = "ending"
        call.ok_next = None
        host, port, transport = self._hop(call)
        bye = call.dialog.create_request("BYE", self._via(transport), extra=[("User-Agent", self.user_agent)])
        tx = self._start_client(bye, (host, port), transport, now)
        call.bye_key = tx.key

    # ------------------------------------------------------------------ requests
    def _fix_via(self, req: Request, addr: Addr, transport: str) -> None:
        """RFC 3581: stamp received/rport so responses find their way back through NAT."""
        via = req.top_via
        if "rport" in via.params or via.host != addr[0]:
            via.params["received"] = addr[0]
        if "rport" in via.params:
            via.params["rport"] = str(addr[1])
        for i, (n, v) in enumerate(req.headers):
            if n == "Via":
                rest = split_quoted(v, ",")
                rest[0] = str(via)
                req.headers[i] = (n, ",".join(rest))
                req._cache.clear()
                break

    def _response_addr(self, req: Request, addr: Addr, transport: str) -> Addr:
        if transport != "udp":
            return addr
        via = req.top_via
        if via.params.get("rport"):
            return addr
        host = via.params.get("received") or via.host
        if host.startswith("["):
            host = host[1:-1]
        return host, via.port or 5060

    def _make_response(self, req: Request, code: int, reason: str | None = None,
                       extra: list[tuple[str, str]] | None = None, body: bytes = b"",
                       to_tag: str | None = None) -> Response:
        headers = [("Via", v) for v in req.get_all("Via")]
        to = req.get("To") or ""
        if to_tag and req.to.tag is None:
            to = f"{to};tag={to_tag}"
        headers += [("From", req.get("From") or ""), ("To", to), ("Call-ID", req.call_id),
                    ("CSeq", req.get("CSeq") or "")]
        if req.method == "INVITE" and 100 < code < 300:
            headers += [("Record-Route", r) for r in req.get_all("Record-Route")]
        headers += [("Server", self.user_agent)]
        headers += extra or []
        return Response(code, reason or reason_for(code), headers, body)

    def _server_tx(self, req: Request, addr: Addr, transport: str, now: float) -> ServerTransaction:
        dest = self._response_addr(req, addr, transport)
        tx: ServerTransaction
        if req.method == "INVITE":
            tx = ServerInviteTransaction(req, dest, transport, self.cfg, now, self._make_response(req, 100))
        else:
            tx = ServerNonInviteTransaction(req, dest, transport, self.cfg, now)
        tx.table_key = ("s", *tx.key)
        self.transactions[tx.table_key] = tx
        self._drain(tx)
        return tx

    def _reply(self, req: Request, addr: Addr, transport: str, code: int, now: float, *,
               extra: list[tuple[str, str]] | None = None, body: bytes = b"", to_tag: str | None = None,
               reason: str | None = None) -> None:
        tx = self._server_tx(req, addr, transport, now)
        tx.send_response(self._make_response(req, code, reason, extra, body, to_tag), now)  # type: ignore[attr-defined]
        self._drain(tx)

    def _on_request(self, req: Request, addr: Addr, transport: str, now: float) -> None:
        self._fix_via(req, addr, transport)
        key = request_key(req)
        tx = self.transactions.get(("s", *key))  # type: ignore[arg-type]
        if isinstance(tx, ServerTransaction):
            tx.receive_request(req, now)  # type: ignore[attr-defined]
            self._drain(tx)
            return
        if req.method == "ACK":
            self._on_ack(req)
            return
        if req.method == "CANCEL":
            self._on_cancel(req, addr, transport, now)
            return
        if req.to.tag is not None:
            self._in_dialog(req, addr, transport, now)
            return
        mf = req.get("Max-Forwards")
        if mf is not None and int(mf) == 0 and req.method != "OPTIONS":
            self._reply(req, addr, transport, 483, now)
            return
        if req.method == "INVITE":
            self._new_invite(req, addr, transport, now)
        elif req.method == "OPTIONS":
            self._reply(req, addr, transport, 200, now, extra=[("Allow", ALLOW), ("Accept", "application/sdp")])
        elif req.method in ("BYE", "INFO", "UPDATE", "PRACK"):
            self._reply(req, addr, transport, 481, now)
        else:
            self._reply(req, addr, transport, 405, now, extra=[("Allow", ALLOW)])

    def _new_invite(self, req: Request, addr: Addr, transport: str, now: float) -> None:
        if req.call_id in self.calls:
            self._reply(req, addr, transport, 482, now)  # merged request / loop (RFC 3261 8.2.2.2)
            return
        if self.verifier is not None and self.verifier.verify(req.get("Authorization"), "INVITE") is None:
            self._reply(req, addr, transport, 401, now, to_tag=new_tag(),
                        extra=[("WWW-Authenticate", self.verifier.challenge())])
            return
        required = [r for r in req.get_all("Require") if r.lower() not in ("timer",)]
        if required:
            self._reply(req, addr, transport, 420, now, extra=[("Unsupported", ", ".join(required))])
            return
        tx = self._server_tx(req, addr, transport, now)
        call = Call(req.call_id, "uas", addr, transport, req, invite_key=tx.key,
                    remote_sdp=req.body or None)
        call.dialog = Dialog.as_uas(req, new_tag())
        self.calls[req.call_id] = call
        self._emit(IncomingInvite(req.call_id, req, addr, transport))

    def _invite_response(self, call: Call, code: int, extra: list[tuple[str, str]], body: bytes,
                         reason: str | None = None) -> Response:
        assert call.dialog is not None
        return self._make_response(call.invite, code, reason, extra, body, to_tag=call.dialog.local_tag)

    def _respond_invite(self, call: Call, code: int, now: float, extra: list[tuple[str, str]], body: bytes,
                        reason: str | None = None) -> None:
        tx = self.transactions.get(("s", *call.invite_key)) if call.invite_key else None  # type: ignore[arg-type]
        if isinstance(tx, ServerInviteTransaction):
            tx.send_response(self._invite_response(call, code, extra, body, reason), now)
            self._drain(tx)

    def _send_ok(self, call: Call, invite: Request, resp: Response, now: float) -> None:
        tx = self.transactions.get(("s", *request_key(invite)))  # type: ignore[arg-type]
        if isinstance(tx, ServerInviteTransaction):
            tx.send_response(resp, now)
            self._drain(tx)
            dest, transport = tx.addr, tx.transport
        else:
            dest, transport = call.addr, call.transport
            self._send(bytes(resp), dest, transport)
        call.ok = bytes(resp)
        call.ok_cseq = invite.cseq[0]
        call.extra["ok_dest"] = (dest, transport)
        call.ok_give_up = now + 64 * self.cfg.t1
        if transport == "udp":
            call.ok_interval = self.cfg.t1
            call.ok_next = now + self.cfg.t1
        else:
            call.ok_next = call.ok_give_up
        self._schedule(call.ok_next, call)

    def _ok_timer(self, call: Call, now: float) -> None:
        if call.ok is None or call.ok_next is None:
            return
        if now >= call.ok_give_up:
            # no ACK for our 2xx: the dialog is dead (RFC 3261 13.3.1.4)
            call.ok = call.ok_next = None
            self._report(call, Hangup(True, call_id=call.call_id))
            self._send_bye(call, now)
            return
        dest, transport = call.extra["ok_dest"]  # type: ignore[misc]
        self._send(call.ok, dest, transport)
        self.stats["retransmissions"] += 1
        call.ok_interval = min(call.ok_interval * 2, self.cfg.t2)
        call.ok_next = min(now + call.ok_interval, call.ok_give_up)
        self._schedule(call.ok_next, call)

    def _find_dialog_call(self, req: Request) -> Call | None:
        call = self.calls.get(req.call_id)
        if call is None or call.dialog is None:
            return None
        d = call.dialog
        if req.to.tag != d.local_tag:
            return None
        if d.remote_tag and req.from_.tag != d.remote_tag:
            return None
        return call

    def _on_ack(self, req: Request) -> None:
        call = self._find_dialog_call(req)
        if call is None or call.ok is None or req.cseq[0] != call.ok_cseq:
            return
        call.ok = call.ok_next = None
        if call.state == "answered":
            call.state = "confirmed"

    def _on_cancel(self, req: Request, addr: Addr, transport: str, now: float) -> None:
        inv_tx = self.transactions.get(("s", request_key(req)[0], "INVITE"))
        if not isinstance(inv_tx, ServerInviteTransaction):
            self._reply(req, addr, transport, 481, now)
            return
        self._reply(req, addr, transport, 200, now)
        call = self.calls.get(req.call_id)
        if call is not None and call.role == "uas" and call.state in ("calling", "early"):
            self._respond_invite(call, 487, now, [], b"")
            self._report(call, Cancelled(call_id=call.call_id))
            self._forget(call)

    def _in_dialog(self, req: Request, addr: Addr, transport: str, now: float) -> None:
        call = self._find_dialog_call(req)
        if call is None or call.dialog is None:
            self._reply(req, addr, transport, 481, now)
            return
        d = call.dialog
        n = req.cseq[0]
        if d.remote_cseq is not None and n < d.remote_cseq and req.method != "ACK":
            self._reply(req, addr, transport, 500, now, reason="Out Of Order CSeq")
            return
        d.remote_cseq = n
        m = req.method
        if m == "BYE":
            self._reply(req, addr, transport, 200, now)
            call.ok = call.ok_next = None
            self._report(call, Hangup(True, call_id=call.call_id))
            self._forget(call)
        elif m == "INFO":
            self._reply(req, addr, transport, 200, now)
            digit, duration = parse_dtmf_info(req)
            if digit is not None:
                self._emit(Dtmf(digit, duration, call_id=call.call_id))
        elif m == "INVITE":
            self._reinvite(call, req, addr, transport, now)
        elif m == "UPDATE":
            sdp = call.local_sdp or b""
            extra = [("Contact", self.contact_for(call.transport))]
            if req.body and sdp:
                extra.append(("Content-Type", "application/sdp"))
                self._reply(req, addr, transport, 200, now, extra=extra, body=sdp)
            else:
                self._reply(req, addr, transport, 200, now, extra=extra)
        elif m in ("OPTIONS", "NOTIFY"):
            self._reply(req, addr, transport, 200, now, extra=[("Allow", ALLOW)])
        else:
            self._reply(req, addr, transport, 501, now, extra=[("Allow", ALLOW)])

    def _reinvite(self, call: Call, req: Request, addr: Addr, transport: str, now: float) -> None:
        """Refreshes and hold/unhold: keep our media as it is and answer with the same SDP."""
        tx = self._server_tx(req, addr, transport, now)
        if call.state not in ("confirmed", "answered") or call.ok is not None:
            tx.send_response(self._make_response(req, 491), now)  # type: ignore[attr-defined]
            self._drain(tx)
            return
        if req.body:
            call.remote_sdp = req.body
        contact = req.get_all("Contact")
        if contact and call.dialog is not None:
            call.dialog.remote_target = str(parse_name_addr(contact[0]).uri)
        extra = [("Contact", self.contact_for(call.transport))]
        body = call.local_sdp or b""
        if body:
            extra.append(("Content-Type", "application/sdp"))
        self._send_ok(call, req, self._make_response(req, 200, None, extra, body), now)

    # ------------------------------------------------------------------ in-dialog requests we send
    def send_info_dtmf(self, call_id: str, digit: str, duration_ms: int = 160, *, now: float) -> None:
        call = self.calls.get(call_id)
        if call is None or call.dialog is None or call.state not in ("confirmed", "answered"):
            return
        host, port, transport = self._hop(call)
        body = f"Signal={digit}\r\nDuration={duration_ms}\r\n".encode()
        req = call.dialog.create_request("INFO", self._via(transport), extra=[
            ("User-Agent", self.user_agent), ("Content-Type", "application/dtmf-relay")], body=body)
        self._start_client(req, (host, port), transport, now)


def parse_dtmf_info(req: Request) -> tuple[str | None, int | None]:
    ctype = (req.get("Content-Type") or "").split(";")[0].strip().lower()
    text = req.body.decode("utf-8", "replace")
    if ctype == "application/dtmf-relay":
        digit: str | None = None
        duration: int | None = None
        for line in text.splitlines():
            k, _, v = line.partition("=")
            k, v = k.strip().lower(), v.strip()
            if k == "signal":
                digit = DTMF_SIGNALS.get(v, v.upper())
            elif k == "duration" and v.isdigit():
                duration = int(v)
        return (digit if digit in DTMF_DIGITS else None), duration
    if ctype == "application/dtmf":
        v = text.strip()
        digit = DTMF_SIGNALS.get(v, v.upper())
        return (digit if digit in DTMF_DIGITS else None), None
    return None, None


def _ack_to_tag(ack: bytes) -> str | None:
    try:
        return parse_message(ack).to.tag
    except ParseError:
        return None
