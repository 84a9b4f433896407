"""The asyncio SIP user agent the engine and the sandbox use: calls as objects with event queues."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable

from ringback.sip.endpoint import SipEndpoint
from ringback.sip.errors import ParseError
from ringback.sip.events import (
    Answered,
    CallEvent,
    Cancelled,
    Dtmf,
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
from ringback.sip.message import Request
from ringback.sip.transport import SipTransport
from ringback.sip.uri import parse_uri, user_of

__all__ = [
    "UserAgent", "OutgoingCall", "IncomingCall", "Registration", "CallEvent", "Ringing", "Answered", "Failed",
    "Hangup", "Dtmf", "Cancelled", "MediaChanged",
]

log = logging.getLogger(__name__)


class _CallBase:
    def __init__(self, ua: UserAgent, call_id: str) -> None:
        self._ua = ua
        self.call_id = call_id
        self.events: asyncio.Queue[CallEvent] = asyncio.Queue()
        self.remote_sdp: bytes | None = None
        self.final_code: int | None = None
        self.ended = False

    def _deliver(self, ev: CallEvent) -> None:
        if isinstance(ev, Answered):
            self.remote_sdp = ev.sdp or None
            self.final_code = 200
        elif isinstance(ev, Failed):
            self.final_code = ev.code
            self.ended = True
        elif isinstance(ev, Hangup | Cancelled):
            self.ended = True
        elif isinstance(ev, Ringing | MediaChanged) and ev.sdp:
            self.remote_sdp = ev.sdp  # early media, or a re-INVITE/UPDATE moved or held the stream
        self.events.put_nowait(ev)

    async def bye(self) -> None:
        self._ua._act(lambda ep, now: ep.bye(self.call_id, now))

    async def send_info_dtmf(self, digit: str, duration_ms: int = 160) -> None:
        self._ua._act(lambda ep, now: ep.send_info_dtmf(self.call_id, digit, duration_ms, now=now))


class OutgoingCall(_CallBase):
    async def cancel(self) -> None:
        self._ua._act(lambda ep, now: ep.cancel(self.call_id, now))


class IncomingCall(_CallBase):
    def __init__(self, ua: UserAgent, call_id: str, request: Request, addr: tuple[str, int], transport: str) -> None:
        super().__init__(ua, call_id)
        self.request = request
        self.remote_addr = addr
        self.transport = transport
        self.remote_sdp = request.body or None
        try:
            self.request_uri_user = parse_uri(request.uri).user or ""
        except ParseError:
            self.request_uri_user = ""
        self.from_user = user_of(request.get("From") or "")
        self.to_user = user_of(request.get("To") or "")
        self.answered = False
        self.rejected = False

    async def ringing(self, code: int = 180, sdp: bytes | None = None) -> None:
        self._ua._act(lambda ep, now: ep.ringing(self.call_id, code, sdp, now=now))

    async def answer(self, sdp: bytes) -> None:
        self.answered = True
        self._ua._act(lambda ep, now: ep.answer(self.call_id, sdp, now=now))

    async def reject(self, code: int, reason: str | None = None) -> None:
        self.rejected = True
        self._ua._act(lambda ep, now: ep.reject(self.call_id, code, reason, now=now))


class Registration:
    """A binding kept at a registrar by the UserAgent: refreshed before expiry, challenges answered,
    retried with back-off after failures, removed by `close()` (and by `UserAgent.close()`)."""

    def __init__(self, ua: UserAgent, reg_id: str) -> None:
        self._ua = ua
        self.reg_id = reg_id
        self.registered = False
        self.expires: int | None = None  # what the registrar granted last
        self.last_code: int | None = None
        self.last_reason = ""
        self.closed = False
        self._changed = asyncio.Event()
        self._ok = asyncio.Event()
        self._gone = asyncio.Event()

    def _deliver(self, ev: Registered | RegistrationFailed | Unregistered) -> None:
        if isinstance(ev, Registered):
            self.registered, self.expires, self.last_code, self.last_reason = True, ev.expires, 200, "OK"
            self._ok.set()
        elif isinstance(ev, RegistrationFailed):
            self.registered, self.last_code, self.last_reason = False, ev.code, ev.reason
            self._ok.clear()
        else:
            self.registered = False
            self._ok.clear()
            self._gone.set()
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_registered(self, timeout: float | None = None) -> bool:
        """True once the registrar has accepted the binding; False if `timeout` passes first."""
        try:
            await asyncio.wait_for(self._ok.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def wait_change(self, timeout: float | None = None) -> None:
        """Until the next outcome (accepted, failed, removed): tests and status pages use it."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    async def close(self, timeout: float = 2.0) -> None:
        """Unregister (expires=0) and wait up to `timeout` for the registrar's answer."""
        if self.closed:
            return
        self.closed = True
        if self._ua._started:
            self._ua._act(lambda ep, now: ep.unregister(self.reg_id, now))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._gone.wait(), timeout)
        self._ua.endpoint.registrations.pop(self.reg_id, None)
        self._ua._registrations.pop(self.reg_id, None)


class UserAgent:
    def __init__(self, host: str, port: int, *, advertise: str | None = None, user_agent: str = "ringback",
                 on_invite: Callable[[IncomingCall], Awaitable[None]] | None = None, t1: float = 0.5,
                 credentials: dict[str, str] | None = None, tcp: bool = True,
                 allowed_sources: Iterable[str] | None = None, nat_fallback: bool = False) -> None:
        """`allowed_sources`: CIDRs (the trunk's addresses) that may send us INVITEs; others get 403, or a
        digest challenge when `credentials` are given too.  `nat_fallback`: see SipEndpoint."""
        self.host = host
        self.port = port
        self.on_invite = on_invite
        self.endpoint = SipEndpoint(host, port, advertise=advertise, user_agent=user_agent, t1=t1,
                                    credentials=credentials, allowed_sources=allowed_sources,
                                    nat_fallback=nat_fallback)
        self._transport = SipTransport(self.endpoint, self._on_flush)
        self._tcp = tcp
        self._calls: dict[str, _CallBase] = {}
        self._registrations: dict[str, Registration] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._started = False

    @property
    def stats(self) -> dict[str, int]:
        s = dict(self.endpoint.stats)
        for k, v in self._transport.stats.items():
            s[k] = s.get(k, 0) + v
        s["calls"] = len(self.endpoint.calls)
        s["transactions"] = len(self.endpoint.transactions)
        return s

    @property
    def idle(self) -> bool:
        """No call, no transaction, no handler task left (tests use it to check nothing leaks)."""
        return self.endpoint.idle and not self._calls and not self._tasks

    async def start(self) -> None:
        self.port = await self._transport.start(self.host, self.port, tcp=self._tcp)
        self.endpoint.port = self.port
        self._started = True

    async def close(self) -> None:
        regs = list(self._registrations.values())
        if regs:
            await asyncio.gather(*(r.close() for r in regs), return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._transport.close()
        self._started = False

    async def __aenter__(self) -> UserAgent:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def invite(self, target: str, *, from_uri: str, sdp: bytes, auth: tuple[str, str] | None = None,
                     headers: dict[str, str] | None = None) -> OutgoingCall:
        now = self._transport.now
        call_id = self.endpoint.invite(target, from_uri=from_uri, sdp=sdp, now=now, auth=auth, headers=headers)
        call = OutgoingCall(self, call_id)
        self._calls[call_id] = call
        self._transport.flush()
        return call

    async def register(self, registrar_uri: str, aor: str, *, auth: tuple[str, str] | None = None,
                       expires: int = 3600) -> Registration:
        """Register `aor` (e.g. sip:+15005551000@trunk) at `registrar_uri` so inbound calls reach us.

        Returns at once; `await reg.wait_registered(timeout)` to know it took.  The binding is refreshed
        before it expires, re-tried after failures, and removed when the Registration or UA closes.
        """
        now = self._transport.now
        reg_id = self.endpoint.register(registrar_uri, aor, now=now, auth=auth, expires=expires)
        reg = Registration(self, reg_id)
        self._registrations[reg_id] = reg
        self._transport.flush()
        return reg

    # ------------------------------------------------------------------ internals
    def _act(self, fn: Callable[[SipEndpoint, float], None]) -> None:
        fn(self.endpoint, self._transport.now)
        self._transport.flush()

    def _on_flush(self) -> None:
        while (ev := self.endpoint.next_event()) is not None:
            if isinstance(ev, IncomingInvite):
                self._incoming(ev)
            elif isinstance(ev, Terminated):
                self._calls.pop(ev.call_id, None)
            elif isinstance(ev, Registered | RegistrationFailed | Unregistered):
                reg = self._registrations.get(ev.reg_id)
                if reg is not None:
                    reg._deliver(ev)
            else:
                call = self._calls.get(ev.call_id)
                if call is not None:
                    call._deliver(ev)

    def _incoming(self, ev: IncomingInvite) -> None:
        call = IncomingCall(self, ev.call_id, ev.request, ev.addr, ev.transport)
        self._calls[ev.call_id] = call
        if self.on_invite is None:
            self.endpoint.reject(ev.call_id, 404, now=self._transport.now)
            return
        task = asyncio.get_running_loop().create_task(self._run_handler(call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_handler(self, call: IncomingCall) -> None:
        assert self.on_invite is not None
        try:
            await self.on_invite(call)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("on_invite handler failed for %s", call.call_id)
            if not call.answered and not call.rejected:
                await call.reject(500)
