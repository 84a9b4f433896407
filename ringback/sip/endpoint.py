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

import hashlib
import heapq
import ipaddress
import itertools
import secrets
from collections import deque
from collections.abc import Iterable
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
    MediaChanged,
    Registered,
    RegistrationFailed,
    Ringing,
    Terminated,
    Unregistered,
)
from ringback.sip.message import Request, Response, new_branch, new_tag, parse_message
from ringback.sip.sdp import SdpError, mirror, offer_direction, with_direction
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
from ringback.sip.uri import SipUri, parse_name_addr, parse_uri, split_quoted

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, NOTIFY, PRACK"
SUPPORTED = "100rel, timer"
# extensions a peer may Require of us (RFC 3262 reliable provisionals, RFC 4028 session timers)
UNDERSTOOD = {"100rel", "timer"}
REASONS = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued", 183: "Session Progress",
    200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 407: "Proxy Authentication Required", 408: "Request Timeout",
    420: "Bad Extension", 422: "Session Interval Too Small", 423: "Interval Too Brief", 480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
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
    # other per-call deadlines by name (reliable 1xx, session timer): the heap entries point at these
    timers: dict[str, float] = field(default_factory=dict)
    # UAS side of RFC 3262: the peer Require'd 100rel, so our 18x are sent reliably
    rel_required: bool = False
    rseq: int = 0
    rel_pending: bytes | None = None
    rel_interval: float = 0.0
    rel_queue: list[tuple[int, bytes | None]] = field(default_factory=list)
    # UAC side of RFC 3262: the last RSeq seen per early dialog (by To tag), and those dialogs
    rseq_seen: dict[str, int] = field(default_factory=dict)
    early: dict[str, Dialog] = field(default_factory=dict)
    # RFC 4028 session timer: interval in seconds (0 = none) and whether we are the refresher
    session_expires: int = 0
    we_refresh: bool = False
    peer_allow: str = ""
    sent_sdp: bytes | None = None  # the SDP we last sent, for o= versioning of re-answers


@dataclass
class Registration:
    """One binding kept alive at a registrar (RFC 3261 10): refreshed before expiry, unregistered on close."""

    reg_id: str  # also the Call-ID, constant across refreshes (10.2.4)
    registrar: SipUri
    aor: str
    contact: str
    auth: tuple[str, str] | None
    expires: int
    from_tag: str
    cseq: int = 0
    state: str = "registering"  # registering, registered, failed (will retry), unregistering
    granted: int = 0
    auth_tries: int = 0
    failures: int = 0
    next_at: float | None = None
    tx_key: tuple[str, str] | None = None
    last_authorization: tuple[str, str] | None = None  # (header name, value) reused on refresh


class SipEndpoint:
    def __init__(self, host: str, port: int, *, advertise: str | None = None, user_agent: str = "ringback",
                 t1: float = 0.5, credentials: dict[str, str] | None = None, realm: str = "ringback",
                 allowed_sources: Iterable[str] | None = None, nat_fallback: bool = False,
                 min_se: int = 90, max_transactions: int = 20_000, max_calls: int = 5_000,
                 register_retry: float = 30.0) -> None:
        """`advertise` ("host" or "host:port") goes in Contact and Via sent-by instead of the bound address.

        `allowed_sources` (CIDRs): new INVITEs from elsewhere are refused with 403, or challenged when
        `credentials` are set too (then sources inside the list are trusted without a challenge).
        `nat_fallback`: in-dialog requests go to where the dialog's INVITE came from (or went to) when
        the peer's Contact is a private/unroutable address, instead of into the void.
        `max_transactions` / `max_calls` bound the tables: beyond them new requests get a stateless 503.
        """
        self.host = host
        self.port = port
        self.advertise = advertise
        self._adv_host, self._adv_port = _split_advertise(advertise)
        self.user_agent = user_agent
        self.cfg = TimerConfig.scaled(t1)
        self.verifier = DigestVerifier(realm, dict(credentials)) if credentials else None
        self.allowed_sources = ([ipaddress.ip_network(c, strict=False) for c in allowed_sources]
                                if allowed_sources is not None else None)
        self.nat_fallback = nat_fallback
        self.min_se = min_se
        self.max_transactions = max_transactions
        self.max_calls = max_calls
        self.register_retry = register_retry
        self.calls: dict[str, Call] = {}
        self.transactions: dict[tuple[str, ...], Transaction] = {}
        self.registrations: dict[str, Registration] = {}
        self.stats: dict[str, int] = {
            "received": 0, "sent": 0, "malformed": 0, "stray_responses": 0, "retransmissions": 0,
            "refused_source": 0, "overload": 0,
        }
        self._events: deque[Event] = deque()
        self._out: list[tuple[bytes, Addr, str]] = []
        # lazy timer heap: an entry is live only while its object still has exactly that deadline
        self._heap: list[tuple[float, int, Transaction | Call | Registration]] = []
        self._seq = itertools.count()

    # ------------------------------------------------------------------ surface
    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def datagrams_to_send(self, now: float | None = None) -> list[tuple[bytes, Addr, str]]:
        out, self._out = self._out, []
        self.stats["sent"] += len(out)
        return out

    def _live(self, when: float, obj: Transaction | Call | Registration) -> bool:
        if isinstance(obj, Call):
            return self.calls.get(obj.call_id) is obj and (obj.ok_next == when or when in obj.timers.values())
        if isinstance(obj, Registration):
            return self.registrations.get(obj.reg_id) is obj and obj.next_at == when
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
                if obj.ok_next is not None and obj.ok_next <= now:
                    self._ok_timer(obj, now)
                for name, t in sorted(obj.timers.items(), key=lambda kv: kv[1]):
                    if t <= now and obj.timers.get(name) == t and self.calls.get(obj.call_id) is obj:
                        del obj.timers[name]
                        self._call_timer(obj, name, now)
                continue
            if isinstance(obj, Registration):
                obj.next_at = None
                self._send_register(obj, now)
                continue
            before = len(obj.outgoing)
            events = obj.handle_timer(now)
            self.stats["retransmissions"] += max(0, len(obj.outgoing) - before)
            self._drain(obj)
            for ev in events:
                self._tx_event(obj, ev, now)

    def _schedule(self, when: float | None, obj: Transaction | Call | Registration) -> None:
        if when is not None:
            heap = self._heap
            heapq.heappush(heap, (when, next(self._seq), obj))
            # stale entries only leave from the top: compact now and then so a flood of short-lived
            # transactions cannot pile dead entries up behind a long timer
            if len(heap) > 1024 and len(heap) > 4 * (len(self.transactions) + len(self.calls) + 1):
                self._heap = [e for e in heap if self._live(e[0], e[2])]
                heapq.heapify(self._heap)

    def _arm_call(self, call: Call, name: str, when: float) -> None:
        call.timers[name] = when
        self._schedule(when, call)

    @property
    def idle(self) -> bool:
        return not self.calls and not self.transactions and not self.registrations

    def contact_for(self, transport: str, user: str | None = None) -> str:
        t = ";transport=tcp" if transport == "tcp" else ""
        return f"<sip:{user or self.user_agent}@{self._hostport}{t}>"

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
            # without these a trunk that Requires 100rel or timer answers 420 and the call is lost
            ("Supported", SUPPORTED),
        ]
        hdrs += list((headers or {}).items())
        if sdp:
            hdrs.append(("Content-Type", "application/sdp"))
        req = Request("INVITE", str(uri), hdrs, sdp)
        call = Call(call_id, "uac", (host, port), transport, req, local_sdp=sdp, auth=auth)
        call.sent_sdp = sdp or None
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
        if call.rel_required and code > 100:
            if call.rel_pending is not None:
                # one unacknowledged reliable 1xx at a time (RFC 3262 3): send it once this is PRACKed
                call.rel_queue.append((code, sdp))
                return
            self._send_reliable(call, code, sdp, now)
            return
        extra = [("Contact", self.contact_for(call.transport))]
        if sdp:
            extra.append(("Content-Type", "application/sdp"))
        self._respond_invite(call, code, now, extra, sdp or b"")

    def _send_reliable(self, call: Call, code: int, sdp: bytes | None, now: float) -> None:
        """A reliable 18x (RFC 3262 3): RSeq, Require 100rel, retransmitted (T1 doubling) until PRACKed."""
        call.rseq += 1
        extra = [("Contact", self.contact_for(call.transport)), ("Require", "100rel"), ("RSeq", str(call.rseq))]
        if sdp:
            extra.append(("Content-Type", "application/sdp"))
            call.sent_sdp = sdp
        resp = self._invite_response(call, code, extra, sdp or b"")
        self._respond_invite(call, code, now, [], b"", resp=resp)
        call.rel_pending = bytes(resp)
        call.rel_interval = self.cfg.t1
        if call.transport == "udp":
            self._arm_call(call, "rel", now + self.cfg.t1)
        self._arm_call(call, "rel_giveup", now + 64 * self.cfg.t1)

    def answer(self, call_id: str, sdp: bytes, *, now: float) -> None:
        call = self.calls.get(call_id)
        if call is None or call.role != "uas" or call.state not in ("calling", "early"):
            return
        call.local_sdp = sdp
        call.sent_sdp = sdp
        call.state = "answered"
        # a final response ends the reliable-1xx retransmissions (RFC 3262 3)
        call.rel_pending = None
        call.rel_queue.clear()
        call.timers.pop("rel", None)
        call.timers.pop("rel_giveup", None)
        extra = [("Contact", self.contact_for(call.transport)), ("Content-Type", "application/sdp"),
                 ("Allow", ALLOW), ("Supported", SUPPORTED)]
        extra += self._session_on_request(call, call.invite, now)
        resp = self._invite_response(call, 200, extra, sdp)
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
        h = self._adv_host or self.host
        return f"[{h}]" if ":" in h and not h.startswith("[") else h

    @property
    def _hostport(self) -> str:
        return f"{self._host}:{self._adv_port or self.port}"

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
        if tx.request.method == "REGISTER":
            reg = self.registrations.get(tx.request.call_id)
            if reg is not None and tx.key == reg.tx_key:
                self._register_failed(reg, 408, reason_for(408), now)
            return
        call = self.calls.get(tx.request.call_id)
        if call is None:
            return
        method = tx.request.method
        if method in ("INVITE", "UPDATE") and tx.key != call.invite_key and call.state == "confirmed":
            self._dialog_gone(call, now)  # our session refresh went unanswered (RFC 4028 10)
        elif method == "INVITE" and call.state in ("calling", "early"):
            code = 487 if call.cancel_requested else 408
            self._report(call, Failed(code, reason_for(code), call_id=call.call_id))
            self._forget(call)
        elif method == "BYE":
            self._forget(call)

    def _client_response(self, tx: ClientTransaction, resp: Response, now: float) -> None:
        method = tx.request.method
        if method == "REGISTER":
            self._on_register_response(tx, resp, now)
            return
        call = self.calls.get(tx.request.call_id)
        if method == "INVITE":
            self._on_invite_response(call, tx, resp, now)
        elif method == "BYE" and call is not None and resp.status >= 200:
            if resp.status in (401, 407) and self._retry_with_auth(call, tx.request, resp, now):
                return
            self._forget(call)
        elif method == "UPDATE" and call is not None and resp.status >= 200:
            if 200 <= resp.status < 300:
                self._session_from_response(call, resp, now)
            elif resp.status in (408, 481):
                self._dialog_gone(call, now)
        # CANCEL, INFO, OPTIONS, PRACK answers need no action

    def _on_invite_response(self, call: Call | None, tx: ClientTransaction, resp: Response, now: float) -> None:
        code = resp.status
        if call is not None and call.dialog is not None and tx.key != call.invite_key and tx.request.to.tag:
            if 200 <= code < 300:  # our re-INVITE was accepted: ACK it within the dialog
                ack = self._build_ack(call.dialog, resp)
                self._send(bytes(ack), *self._hop_of(call))
                if tx.request.get("Session-Expires") is not None:
                    self._session_from_response(call, resp, now)
            elif code in (408, 481):
                self._dialog_gone(call, now)
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
                if resp.to.tag and call.dialog is None:
                    call.dialog = Dialog.as_uac(call.invite, resp)
                reliable = "100rel" in _tokens(resp, "Require") and resp.get("RSeq") is not None
                if reliable and not self._prack(call, resp, now):
                    return  # a retransmitted reliable 1xx: PRACKed already, not news
                call.state = "early"
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
            early = call.early.get(resp.to.tag or "")
            call.dialog = Dialog.as_uac(call.invite, resp)
            if early is not None:  # PRACKs used CSeq numbers in this dialog: do not reuse them
                call.dialog.local_cseq = max(call.dialog.local_cseq, early.local_cseq)
            call.state = "confirmed"
            call.remote_sdp = resp.body or None
            call.peer_allow = ",".join(resp.get_all("Allow"))
            self._session_from_response(call, resp, now)
            call.ack = bytes(self._build_ack(call.dialog, resp))
            if isinstance(tx, ClientInviteTransaction):
                tx.ack2xx = call.ack
            self._send(call.ack, *self._hop_of(call))
            self._emit(Answered(resp.body, call_id=call.call_id))
            return
        if code in (401, 407) and not call.cancel_requested and self._retry_with_auth(call, call.invite, resp, now):
            return
        if code == 422 and not call.cancel_requested and self._retry_min_se(call, resp, now):
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

    def _prack(self, call: Call, resp: Response, now: float) -> bool:
        """PRACK a reliable provisional (RFC 3262 4); False when it is a retransmission to ignore."""
        tag = resp.to.tag
        rseq_v = (resp.get("RSeq") or "").strip()
        if not tag or not rseq_v.isdigit() or len(rseq_v) > 10:
            return True  # not a usable reliable response: treat it as an ordinary one
        rseq = int(rseq_v)
        last = call.rseq_seen.get(tag)
        if last is not None and rseq != last + 1:
            return False  # a retransmission (<= last) or out of order (the UAS retransmits it later)
        call.rseq_seen[tag] = rseq
        dialog = call.early.get(tag)
        if dialog is None:
            same = call.dialog is not None and call.dialog.remote_tag == tag
            dialog = call.dialog if same and call.dialog is not None else Dialog.as_uac(call.invite, resp)
            call.early[tag] = dialog
        host, port, transport = self._hop_dialog(call, dialog)
        cseq_n, method = resp.cseq
        prack = dialog.create_request("PRACK", self._via(transport), extra=[
            ("RAck", f"{rseq} {cseq_n} {method}"), ("User-Agent", self.user_agent)])
        self._start_client(prack, (host, port), transport, now)
        return True

    def _retry_min_se(self, call: Call, resp: Response, now: float) -> bool:
        """422: a proxy or the UAS wants a longer session interval; retry once with its Min-SE (RFC 4028 7.4)."""
        min_se_v = (resp.get("Min-SE") or "").split(";")[0].strip()
        if not min_se_v.isdigit() or call.extra.get("min_se_retry"):
            return False
        call.extra["min_se_retry"] = True
        req = Request("INVITE", call.invite.uri, list(call.invite.headers), call.invite.body)
        req.set("Via", self._via(call.transport))
        req.set("Session-Expires", min_se_v)
        req.set("Min-SE", min_se_v)
        req.set("CSeq", f"{call.invite.cseq[0] + 1} INVITE")
        call.invite = req
        call.provisional = False
        tx = self._start_client(req, call.addr, call.transport, now)
        call.invite_key = tx.key
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
        return self._hop_dialog(call, call.dialog)

    def _hop_dialog(self, call: Call, dialog: Dialog) -> tuple[str, int, str]:
        host, port, transport = dialog.next_hop()
        if call.transport == "tcp":
            transport = "tcp"
        if self.nat_fallback and not dialog.route_set and _unroutable(host) and host != call.addr[0]:
            # the peer sits behind NAT and put its private address in Contact: the only address known
            # to reach it is the one its INVITE came from (or ours went to), as for the responses
            return call.addr[0], call.addr[1], call.transport
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
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return host, via.port or 5060
        if ip.is_multicast or ip.is_unspecified or ip == ipaddress.IPv4Address("255.255.255.255"):
            return addr  # never answer to a broadcast/multicast sent-by (RFC 4475 bcast): reflection
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

    def _source_trusted(self, host: str) -> bool | None:
        """None when no source list is configured, else whether `host` is inside it."""
        if self.allowed_sources is None:
            return None
        try:
            ip = ipaddress.ip_address(host[1:-1] if host.startswith("[") else host)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d
        return any(ip in net for net in self.allowed_sources)

    def _reply_stateless(self, req: Request, addr: Addr, transport: str, code: int, *,
                         extra: list[tuple[str, str]] | None = None, reason: str | None = None) -> None:
        """Answer without keeping a transaction: refusals must cost no memory, whatever the flood."""
        to_tag = _stateless_tag(req) if req.to.tag is None else None
        resp = self._make_response(req, code, reason, extra, b"", to_tag)
        self._send(bytes(resp), self._response_addr(req, addr, transport), transport)

    def _on_request(self, req: Request, addr: Addr, transport: str, now: float) -> None:
        self._fix_via(req, addr, transport)
        key = request_key(req)
        tx = self.transactions.get(("s", *key))  # type: ignore[arg-type]
        if isinstance(tx, ServerTransaction):
            tx.receive_request(req, now)  # type: ignore[attr-defined]
            self._drain(tx)
            return
        if req.method == "ACK":
            self._on_ack(req, now)
            return
        if len(self.transactions) >= self.max_transactions:
            # a full table takes nothing new: the stateless 503 asks the sender to come back later
            self.stats["overload"] += 1
            self._reply_stateless(req, addr, transport, 503, extra=[("Retry-After", "5")])
            return
        if req.method == "CANCEL":
            self._on_cancel(req, addr, transport, now)
            return
        if req.to.tag is not None:
            self._in_dialog(req, addr, transport, now)
            return
        trusted = self._source_trusted(addr[0])
        if trusted is False and not (req.method == "INVITE" and self.verifier is not None):
            # not the trunk: no call through us (toll fraud), and no fingerprint for scanners either
            self.stats["refused_source"] += 1
            self._reply_stateless(req, addr, transport, 403)
            return
        mf = req.get("Max-Forwards")
        if mf is not None and int(mf) == 0 and req.method != "OPTIONS":
            self._reply(req, addr, transport, 483, now)
            return
        unsupported = [r for r in req.get_all("Require") if r.lower() not in UNDERSTOOD]
        if unsupported:  # any method, not only INVITE (RFC 3261 8.2.2.3, RFC 4475 bext01)
            self._reply(req, addr, transport, 420, now, extra=[("Unsupported", ", ".join(unsupported))])
            return
        if req.method == "INVITE":
            self._new_invite(req, addr, transport, now, trusted=bool(trusted))
        elif req.method == "OPTIONS":
            self._reply(req, addr, transport, 200, now, extra=[("Allow", ALLOW), ("Accept", "application/sdp"),
                                                               ("Supported", SUPPORTED)])
        elif req.method in ("BYE", "INFO", "UPDATE", "PRACK"):
            self._reply(req, addr, transport, 481, now)
        else:
            self._reply(req, addr, transport, 405, now, extra=[("Allow", ALLOW)])

    def _too_small_se(self, req: Request) -> bool:
        """RFC 4028 8.1: a Session-Expires below our Min-SE is refused with 422 (checked before any state)."""
        se_v = req.get("Session-Expires")
        if se_v is None:
            return False
        se, _ = parse_session_expires(se_v)
        return se < self.min_se

    def _new_invite(self, req: Request, addr: Addr, transport: str, now: float, *, trusted: bool = False) -> None:
        if req.call_id in self.calls:
            self._reply(req, addr, transport, 482, now)  # merged request / loop (RFC 3261 8.2.2.2)
            return
        if len(self.calls) >= self.max_calls:
            self.stats["overload"] += 1
            self._reply_stateless(req, addr, transport, 503, extra=[("Retry-After", "5")])
            return
        if (self.verifier is not None and not trusted
                and self.verifier.verify(req.get("Authorization"), "INVITE") is None):
            self._reply_stateless(req, addr, transport, 401, extra=[("WWW-Authenticate", self.verifier.challenge())])
            return
        if self._too_small_se(req):
            self._reply(req, addr, transport, 422, now, extra=[("Min-SE", str(self.min_se))])
            return
        tx = self._server_tx(req, addr, transport, now)
        call = Call(req.call_id, "uas", addr, transport, req, invite_key=tx.key,
                    remote_sdp=req.body or None)
        call.dialog = Dialog.as_uas(req, new_tag())
        # we never require 100rel ourselves; we honour it when the caller does (RFC 3262 3)
        call.rel_required = "100rel" in _tokens(req, "Require")
        call.rseq = secrets.randbelow(2**16)
        call.peer_allow = ",".join(req.get_all("Allow"))
        self.calls[req.call_id] = call
        self._emit(IncomingInvite(req.call_id, req, addr, transport))

    def _invite_response(self, call: Call, code: int, extra: list[tuple[str, str]], body: bytes,
                         reason: str | None = None) -> Response:
        assert call.dialog is not None
        return self._make_response(call.invite, code, reason, extra, body, to_tag=call.dialog.local_tag)

    def _respond_invite(self, call: Call, code: int, now: float, extra: list[tuple[str, str]], body: bytes,
                        reason: str | None = None, *, resp: Response | None = None) -> None:
        tx = self.transactions.get(("s", *call.invite_key)) if call.invite_key else None  # type: ignore[arg-type]
        if isinstance(tx, ServerInviteTransaction):
            tx.send_response(resp or self._invite_response(call, code, extra, body, reason), now)
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

    def _call_timer(self, call: Call, name: str, now: float) -> None:
        if name == "rel":
            if call.rel_pending is None or call.state not in ("calling", "early"):
                return
            tx = self.transactions.get(("s", *call.invite_key)) if call.invite_key else None  # type: ignore[arg-type]
            self._send(call.rel_pending, tx.addr if tx is not None else call.addr, call.transport)
            self.stats["retransmissions"] += 1
            call.rel_interval *= 2  # RFC 3262 3: doubling, no T2 cap, until 64*T1
            self._arm_call(call, "rel", now + call.rel_interval)
        elif name == "rel_giveup":
            if call.rel_pending is None or call.state not in ("calling", "early"):
                return
            # never PRACKed: RFC 3262 3 says reject the INVITE with a 5xx; the caller is gone for us
            call.rel_pending = None
            self._respond_invite(call, 500, now, [], b"", "Reliable Provisional Not Acknowledged")
            self._report(call, Cancelled(call_id=call.call_id))
            self._forget(call)
        elif name == "se_refresh":
            self._refresh_session(call, now)
        elif name == "se_expire" and call.state in ("answered", "confirmed"):
            # RFC 4028 10: no refresh came (or ours went unanswered): the session is dead, say BYE
            self._report(call, Hangup(True, call_id=call.call_id))
            self._send_bye(call, now)

    # ------------------------------------------------------------------ session timers (RFC 4028)
    def _start_session(self, call: Call, se: int, we_refresh: bool, now: float) -> None:
        call.session_expires = se
        call.we_refresh = we_refresh
        call.timers.pop("se_refresh", None)
        if we_refresh:
            self._arm_call(call, "se_refresh", now + se / 2)
        # both sides watch the expiry: the refresher too, should its refreshes fail silently (10)
        self._arm_call(call, "se_expire", now + se - min(32, se / 3))

    def _stop_session(self, call: Call) -> None:
        call.session_expires = 0
        call.timers.pop("se_refresh", None)
        call.timers.pop("se_expire", None)

    def _session_on_request(self, call: Call, req: Request, now: float) -> list[tuple[str, str]]:
        """As the UAS of an INVITE or UPDATE: honour the peer's Session-Expires; headers for our 2xx."""
        se_v = req.get("Session-Expires")
        if se_v is None:
            # RFC 4028 9: no Session-Expires in a (re-)INVITE/UPDATE turns the timer off.  Keeping it would
            # risk BYEing a healthy call whose peer does not mean to refresh any more.
            self._stop_session(call)
            return []
        try:
            se, refresher = parse_session_expires(se_v)
        except ParseError:
            return []
        uac_timer = "timer" in _tokens(req, "Supported") | _tokens(req, "Require")
        if refresher is None or not uac_timer:
            # we choose: the peer if it can refresh (less work for us), else we must (9)
            refresher = "uac" if uac_timer else "uas"
        self._start_session(call, se, refresher == "uas", now)
        out = [("Session-Expires", f"{se};refresher={refresher}")]
        if refresher == "uac":
            out.append(("Require", "timer"))
        return out

    def _session_from_response(self, call: Call, resp: Response, now: float) -> None:
        """As the UAC of an INVITE/UPDATE: the 2xx's Session-Expires decides (7.2); none means no timer."""
        se_v = resp.get("Session-Expires")
        if se_v is None:
            self._stop_session(call)
            return
        try:
            se, refresher = parse_session_expires(se_v)
        except ParseError:
            return
        self._start_session(call, max(se, 1), (refresher or "uac") == "uac", now)

    def _refresh_session(self, call: Call, now: float) -> None:
        if call.dialog is None or call.state != "confirmed" or not call.session_expires:
            return  # the expiry timer still covers a call that cannot be refreshed now
        host, port, transport = self._hop(call)
        extra = [("Session-Expires", f"{call.session_expires};refresher=uac"), ("Supported", SUPPORTED),
                 ("Contact", self.contact_for(call.transport)), ("User-Agent", self.user_agent)]
        # UPDATE carries no SDP and cannot glare with media changes; re-INVITE for peers without it (4028 9)
        if "UPDATE" in call.peer_allow.upper():
            req = call.dialog.create_request("UPDATE", self._via(transport), extra=extra)
        else:
            body = call.sent_sdp or call.local_sdp or b""
            if body:
                extra.append(("Content-Type", "application/sdp"))
            req = call.dialog.create_request("INVITE", self._via(transport), extra=extra, body=body)
        self._start_client(req, (host, port), transport, now)

    def _dialog_gone(self, call: Call, now: float) -> None:
        """A 408/481 to an in-dialog request: the peer has forgotten the call (RFC 5057)."""
        if call.state in ("answered", "confirmed"):
            self._report(call, Hangup(True, call_id=call.call_id))
            self._send_bye(call, now)

    # ------------------------------------------------------------------ in-dialog requests we receive
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

    def _on_ack(self, req: Request, now: float | None = None) -> None:
        call = self._find_dialog_call(req)
        if call is None or call.ok is None or req.cseq[0] != call.ok_cseq:
            return
        call.ok = call.ok_next = None
        if call.state == "answered":
            call.state = "confirmed"
        if req.body and req.body != call.remote_sdp:
            # the answer to the offer our 2xx made for an offer-less re-INVITE
            call.remote_sdp = req.body
            try:
                direction = offer_direction(req.body)
            except SdpError:
                return
            self._emit(MediaChanged(req.body, direction, call_id=call.call_id))

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
            self._update(call, req, addr, transport, now)
        elif m == "PRACK":
            self._on_prack(call, req, addr, transport, now)
        elif m in ("OPTIONS", "NOTIFY"):
            self._reply(req, addr, transport, 200, now, extra=[("Allow", ALLOW)])
        else:
            self._reply(req, addr, transport, 501, now, extra=[("Allow", ALLOW)])

    def _on_prack(self, call: Call, req: Request, addr: Addr, transport: str, now: float) -> None:
        rack = (req.get("RAck") or "").split()
        matches = (call.rel_pending is not None and len(rack) == 3 and rack[0] == str(call.rseq)
                   and rack[1] == str(call.invite.cseq[0]) and rack[2].upper() == "INVITE")
        if not matches:
            self._reply(req, addr, transport, 481, now)  # RFC 3262 3: no such unacknowledged response
            return
        self._reply(req, addr, transport, 200, now)
        call.rel_pending = None
        call.timers.pop("rel", None)
        call.timers.pop("rel_giveup", None)
        if call.rel_queue and call.state == "early":
            code, sdp = call.rel_queue.pop(0)
            self._send_reliable(call, code, sdp, now)

    def _reanswer(self, call: Call, offer: bytes) -> bytes | None:
        """Our answer to a new offer in the dialog: our media as it is, the direction mirrored
        (the peer's a=sendonly, i.e. hold, gets a=recvonly).  None: not an acceptable offer (488)."""
        if call.local_sdp is None:
            return None
        try:
            direction = offer_direction(offer)
            answer = with_direction(call.local_sdp, mirror(direction), previous=call.sent_sdp)
        except (SdpError, UnicodeDecodeError):
            return None
        changed = offer != call.remote_sdp
        call.remote_sdp = offer
        call.sent_sdp = answer
        if changed:
            self._emit(MediaChanged(offer, direction, call_id=call.call_id))
        return answer

    def _update(self, call: Call, req: Request, addr: Addr, transport: str, now: float) -> None:
        if self._too_small_se(req):
            self._reply(req, addr, transport, 422, now, extra=[("Min-SE", str(self.min_se))])
            return
        extra = [("Contact", self.contact_for(call.transport))]
        body = b""
        if req.body:
            answer = self._reanswer(call, req.body)
            if answer is None:
                self._reply(req, addr, transport, 488, now)
                return
            body = answer
            extra.append(("Content-Type", "application/sdp"))
        if call.state in ("answered", "confirmed"):
            extra += self._session_on_request(call, req, now)
        self._reply(req, addr, transport, 200, now, extra=extra, body=body)

    def _reinvite(self, call: Call, req: Request, addr: Addr, transport: str, now: float) -> None:
        """Refreshes and hold/unhold: our media as it is, the direction mirrored, the session timer renewed."""
        tx = self._server_tx(req, addr, transport, now)
        if call.state not in ("confirmed", "answered") or call.ok is not None:
            tx.send_response(self._make_response(req, 491), now)  # type: ignore[attr-defined]
            self._drain(tx)
            return
        if self._too_small_se(req):
            tx.send_response(self._make_response(req, 422, extra=[("Min-SE", str(self.min_se))]), now)  # type: ignore[attr-defined]
            self._drain(tx)
            return
        extra = [("Contact", self.contact_for(call.transport)), ("Allow", ALLOW), ("Supported", SUPPORTED)]
        if req.body:
            answer = self._reanswer(call, req.body)
            if answer is None:
                tx.send_response(self._make_response(req, 488), now)  # type: ignore[attr-defined]
                self._drain(tx)
                return
            body = answer
        elif call.local_sdp is not None:
            # an offer-less re-INVITE: our 2xx makes the offer (ready to talk again), the ACK answers
            body = with_direction(call.local_sdp, "sendrecv", previous=call.sent_sdp)
            call.sent_sdp = body
        else:
            body = b""
        contact = req.get_all("Contact")
        if contact and call.dialog is not None:
            call.dialog.remote_target = str(parse_name_addr(contact[0]).uri)
        if body:
            extra.append(("Content-Type", "application/sdp"))
        extra += self._session_on_request(call, req, now)
        self._send_ok(call, req, self._make_response(req, 200, None, extra, body), now)

    # ------------------------------------------------------------------ registration (RFC 3261 10)
    def register(self, registrar: str, aor: str, *, now: float, auth: tuple[str, str] | None = None,
                 expires: int = 3600) -> str:
        """Keep a binding of `aor` to our Contact at `registrar`; returns the registration's id."""
        reg_uri = parse_uri(registrar)
        aor_uri = parse_name_addr(aor).uri
        reg_id = f"{secrets.token_hex(12)}@{self._host}"
        contact = self.contact_for(reg_uri.transport, aor_uri.user)
        reg = Registration(reg_id, reg_uri, str(aor_uri), contact, auth, expires, new_tag())
        self.registrations[reg_id] = reg
        self._send_register(reg, now)
        return reg_id

    def unregister(self, reg_id: str, now: float) -> None:
        """Remove the binding (expires=0); Unregistered follows when the registrar answers (or gives up)."""
        reg = self.registrations.get(reg_id)
        if reg is None or reg.state == "unregistering":
            return
        never = reg.granted == 0 and reg.state == "failed"
        reg.state = "unregistering"
        reg.next_at = None
        reg.auth_tries = 0
        if never:  # nothing is bound there: nothing to remove
            del self.registrations[reg_id]
            self._emit(Unregistered(reg_id))
            return
        self._send_register(reg, now)

    def _send_register(self, reg: Registration, now: float,
                       authorization: tuple[str, str] | None = None) -> None:
        if reg.state == "failed":
            reg.state = "registering"
        reg.cseq += 1
        expires = 0 if reg.state == "unregistering" else reg.expires
        transport = reg.registrar.transport
        r = reg.registrar
        # the Request-URI names the registrar's domain, without a user part (10.2)
        ruri = SipUri(r.scheme, None, None, r.host, r.port, dict(r.params))
        headers = [("Via", self._via(transport)), ("Max-Forwards", "70"),
                   ("From", f"<{reg.aor}>;tag={reg.from_tag}"), ("To", f"<{reg.aor}>"),
                   ("Call-ID", reg.reg_id), ("CSeq", f"{reg.cseq} REGISTER"),
                   ("Contact", reg.contact), ("Expires", str(expires)), ("User-Agent", self.user_agent),
                   ("Allow", ALLOW), ("Supported", SUPPORTED)]
        if authorization is not None:
            headers.append(authorization)
        tx = self._start_client(Request("REGISTER", str(ruri), headers), r.addr, transport, now)
        reg.tx_key = tx.key

    def _granted(self, reg: Registration, resp: Response) -> int:
        """The registrar's word on our binding: its Contact's expires, else Expires, else what we asked."""
        ours = parse_name_addr(reg.contact).uri
        for value in resp.get_all("Contact"):
            try:
                c = parse_name_addr(value)
            except ParseError:
                continue
            if (c.uri.user, c.uri.host, c.uri.port) == (ours.user, ours.host, ours.port):
                e = c.params.get("expires") or ""
                if e.isdigit() and len(e) < 10:
                    return int(e)
        e = (resp.get("Expires") or "").strip()
        return int(e) if e.isdigit() and len(e) < 10 else reg.expires

    def _on_register_response(self, tx: ClientTransaction, resp: Response, now: float) -> None:
        reg = self.registrations.get(tx.request.call_id)
        code = resp.status
        if reg is None or tx.key != reg.tx_key or code < 200:
            return
        if code in (401, 407) and reg.auth is not None:
            hname = "WWW-Authenticate" if code == 401 else "Proxy-Authenticate"
            aname = "Authorization" if code == 401 else "Proxy-Authorization"
            try:
                challenge = parse_challenge(resp.get(hname) or "")
                value = build_authorization(challenge, username=reg.auth[0], password=reg.auth[1],
                                            method="REGISTER", uri=tx.request.uri)
            except ParseError:
                challenge, value = {}, ""
            # one answer per challenge; a second 401 means the password is wrong, unless the nonce was stale
            if value and (reg.auth_tries == 0 or challenge.get("stale", "").lower() == "true") and reg.auth_tries < 3:
                reg.auth_tries += 1
                self._send_register(reg, now, (aname, value))
                return
        if code == 423 and reg.state != "unregistering":
            min_exp = (resp.get("Min-Expires") or "").strip()
            if min_exp.isdigit() and reg.expires < int(min_exp) < 2**31:
                reg.expires = int(min_exp)
                self._send_register(reg, now)
                return
        if 200 <= code < 300:
            reg.auth_tries = 0
            if reg.state == "unregistering":
                del self.registrations[reg.reg_id]
                self._emit(Unregistered(reg.reg_id))
                return
            granted = self._granted(reg, resp)
            if granted > 0:
                reg.state = "registered"
                reg.granted = granted
                reg.failures = 0
                # refresh with a minute to spare, or at half-time for short bindings
                reg.next_at = now + max(granted / 2, granted - 60)
                self._schedule(reg.next_at, reg)
                self._emit(Registered(reg.reg_id, granted))
                return
            code = 500  # a 2xx that does not list our binding: try again later
        self._register_failed(reg, code, resp.reason or reason_for(code), now, resp.get("Retry-After"))

    def _register_failed(self, reg: Registration, code: int, reason: str, now: float,
                         retry_after: str | None = None) -> None:
        if reg.state == "unregistering":
            # the binding lapses at its expiry anyway; nothing else to try
            self.registrations.pop(reg.reg_id, None)
            self._emit(Unregistered(reg.reg_id))
            return
        reg.state = "failed"
        reg.granted = 0
        reg.failures += 1
        reg.auth_tries = 0
        delay = min(self.register_retry * 2 ** min(reg.failures - 1, 10), 20 * self.register_retry)
        ra = (retry_after or "").split(";")[0].strip()
        if ra.isdigit() and len(ra) < 7:
            delay = max(float(ra), 1.0)
        reg.next_at = now + delay
        self._schedule(reg.next_at, reg)
        self._emit(RegistrationFailed(reg.reg_id, code, reason))

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


def _split_advertise(advertise: str | None) -> tuple[str | None, int | None]:
    """'203.0.113.5', '203.0.113.5:5080', '[2001:db8::1]:5080' or a bare IPv6 address."""
    if not advertise:
        return None, None
    a = advertise.strip()
    if a.startswith("["):
        host, _, rest = a[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    if a.count(":") == 1:
        host, _, port = a.partition(":")
        return host, int(port) if port.isdigit() else None
    return a, None


def _unroutable(host: str) -> bool:
    """A Contact host nobody outside its LAN can reach: RFC 1918/6598/4193, link-local, unspecified,
    or a `.invalid` name (WebRTC gateways).  Loopback is not: tests and local peers live there."""
    h = host[1:-1] if host.startswith("[") else host
    if h.endswith(".invalid"):
        return True
    try:
        ip = ipaddress.ip_address(h)
    except ValueError:
        return False
    if ip.is_loopback:
        return False
    cgnat = ip.version == 4 and ip in ipaddress.ip_network("100.64.0.0/10")
    return ip.is_private or ip.is_link_local or ip.is_unspecified or cgnat


def _tokens(msg: Request | Response, name: str) -> set[str]:
    return {v.strip().lower() for v in msg.get_all(name)}


def parse_session_expires(value: str) -> tuple[int, str | None]:
    """'1800;refresher=uac' -> (1800, 'uac'); ParseError on junk."""
    delta, _, params = value.partition(";")
    delta = delta.strip()
    if not delta.isdigit() or len(delta) > 9:
        raise ParseError("bad Session-Expires")
    refresher = None
    for p in params.split(";"):
        k, _, v = p.partition("=")
        if k.strip().lower() == "refresher" and v.strip().lower() in ("uac", "uas"):
            refresher = v.strip().lower()
    return int(delta), refresher


def _stateless_tag(req: Request) -> str:
    """A To tag derived from the request, so a retransmitted INVITE gets the same stateless answer."""
    seed = f"{req.call_id}|{req.from_.tag}|{req.top_via.branch}".encode("utf-8", "surrogateescape")
    return hashlib.sha256(seed).hexdigest()[:12]


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
