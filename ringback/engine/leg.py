"""A call leg: one SIP dialog with its RTP session, and how an outbound leg is placed.

Used by outbound REST calls, inbound calls and every <Dial> leg alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ringback.sip import sdp
from ringback.sip.events import Answered, Dtmf, Failed, Hangup, MediaChanged, Ringing

if TYPE_CHECKING:
    from ringback.engine.context import EngineContext
    from ringback.media.engine import RtpSession

log = logging.getLogger("ringback.leg")


class CallLeg:
    """A live, answered leg. `hung_up` is set once either side ended it."""

    def __init__(self, ctx: EngineContext, dialog: Any, media: RtpSession, *, label: str = "") -> None:
        self.ctx = ctx
        self.dialog = dialog  # ringback.sip.ua.OutgoingCall | IncomingCall
        self.media = media
        self.label = label
        self.answered_at = time.monotonic()
        self.hung_up = asyncio.Event()
        self.remote_hangup = False
        self._closed = False
        self._watch = asyncio.get_running_loop().create_task(self._watch_dialog(), name=f"leg-watch-{label}")
        media.on_rtp_timeout = self._on_rtp_timeout

    async def _watch_dialog(self) -> None:
        while not self.hung_up.is_set():
            ev = await self.dialog.events.get()
            if isinstance(ev, Hangup):
                self.remote_hangup = self.remote_hangup or ev.by_remote
                self.hung_up.set()
            elif isinstance(ev, Dtmf):
                self.media.inject_digit(ev.digit)
            elif isinstance(ev, MediaChanged):
                self._media_changed(ev)
            elif isinstance(ev, Failed):
                self.hung_up.set()

    def _media_changed(self, ev: MediaChanged) -> None:
        """A re-INVITE/UPDATE from the peer: hold, unhold, or RTP moved elsewhere."""
        if ev.direction in ("sendonly", "inactive"):
            # On hold: the peer may send nothing for a long time; that is not a dead call.
            self.media.on_rtp_timeout = None
            return
        self.media.on_rtp_timeout = self._on_rtp_timeout
        try:
            p = sdp.parse_answer(ev.sdp)
        except Exception:
            log.warning("leg %s: unusable SDP in a re-INVITE, media unchanged", self.label)
            return
        if p.remote_host not in ("0.0.0.0", "::") and p.remote_port:
            self.media.set_remote(p.remote_host, p.remote_port, p.payload_type, p.telephone_event_pt)

    async def wait_key(self, key: str) -> None:
        """Return when the far end presses `key`; never returns once the media is closed
        (next_digit's None means closed, not a key: looping on it would spin)."""
        while True:
            d = await self.media.next_digit(None)
            if d == key:
                return
            if d is None:
                await asyncio.Event().wait()

    def _on_rtp_timeout(self) -> None:
        log.warning("leg %s: no RTP for %.0f s, hanging up", self.label, self.ctx.settings.rtp_timeout)
        self.ctx.spawn(self.hangup(), name=f"rtp-timeout-{self.label}")

    async def hangup(self) -> None:
        """BYE (unless the far end already hung up); idempotent."""
        if not self.hung_up.is_set():
            self.hung_up.set()
            with contextlib.suppress(Exception):
                await self.dialog.bye()

    async def close(self) -> None:
        """Hang up and release the media port; always safe to call."""
        if self._closed:
            return
        self._closed = True
        await self.hangup()
        self._watch.cancel()
        with contextlib.suppress(BaseException):
            await self._watch
        await self.media.close()


@dataclass
class PlaceResult:
    leg: CallLeg | None
    code: int | None  # final SIP code when not answered; None = transport error / no response
    reason: str = ""
    rang: bool = False


async def place_call(
    ctx: EngineContext,
    to_e164: str,
    from_e164: str,
    *,
    timeout: float,
    headers: dict[str, str] | None = None,
    cancel: asyncio.Event | None = None,
    label: str = "",
) -> PlaceResult:
    """INVITE `to_e164` through the trunk; ring at most `timeout` seconds from the INVITE, then CANCEL.

    180/183, with or without early media, count as ringing. Setting `cancel` abandons the attempt
    (another <Dial> target answered first, or the caller hung up).
    """
    media = await ctx.media.open_session()
    try:
        offer = sdp.make_offer(ctx.sip_host, media.local_port)
        target = ctx.trunk.target(to_e164)
        try:
            out = await ctx.ua.invite(
                target, from_uri=ctx.from_uri(from_e164), sdp=offer, auth=ctx.trunk.auth, headers=headers
            )
        except OSError as exc:
            await media.close()
            return PlaceResult(None, None, f"transport error: {exc}")
        deadline = time.monotonic() + timeout
        rang = False
        cancelled = False
        while True:
            remaining = deadline - time.monotonic()
            waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(out.events.get())]
            if cancel is not None and not cancelled:
                waiters.append(asyncio.ensure_future(cancel.wait()))
            done, pending = await asyncio.wait(
                waiters, timeout=40.0 if cancelled else max(0.0, remaining), return_when=asyncio.FIRST_COMPLETED
            )
            for p in pending:
                p.cancel()
            ev = None
            if waiters[0] in done:
                ev = waiters[0].result()
            elif not cancelled:
                # Timeout reached or abandoned: CANCEL, then wait for the 487 (or a racing 200).
                cancelled = True
                await out.cancel()
                continue
            else:
                # The UA's own timers end a CANCELled INVITE well before this; belt and braces.
                await media.close()
                return PlaceResult(None, 487, "no response to CANCEL", rang)
            if isinstance(ev, Ringing):
                # Not written to the database: REST Status is 1 from the INVITE on, and nothing
                # reads an internal "ringing" state (a write per call for no reader).
                rang = True
            elif isinstance(ev, Answered):
                if cancelled:
                    # A 200 raced our CANCEL: the UA ACKs and BYEs it; we treat it as not answered.
                    with contextlib.suppress(Exception):
                        await out.bye()
                    await media.close()
                    return PlaceResult(None, 487, "cancelled", rang)
                try:
                    params = sdp.parse_answer(ev.sdp)
                except Exception:
                    with contextlib.suppress(Exception):
                        await out.bye()
                    await media.close()
                    return PlaceResult(None, 488, "unusable SDP answer", rang)
                media.set_remote(params.remote_host, params.remote_port, params.payload_type, params.telephone_event_pt)
                return PlaceResult(CallLeg(ctx, out, media, label=label), 200, "OK", rang)
            elif isinstance(ev, Failed):
                await media.close()
                code = ev.code if ev.code else None
                return PlaceResult(None, code, ev.reason, rang)
            elif isinstance(ev, Hangup):
                await media.close()
                return PlaceResult(None, None, "hung up before answer", rang)
    except BaseException:
        await media.close()
        raise
