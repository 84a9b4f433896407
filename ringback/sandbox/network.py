"""The built-in sandbox phone network: virtual phones that are real SIP user agents with real RTP.

Each phone answers (or refuses) as the numbering plan says, speaks with the TTS engine, beeps,
presses digits (RFC 4733 or in-band, as negotiated), hangs up, and keeps what it heard: the audio
(WAV) and the digits it received, keyed by the ringback CallSid (the `X-Ringback-CallSid` header
ringback puts on its INVITEs) or by the SIP Call-ID for foreign callers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from ringback import numbers
from ringback.media import tones
from ringback.media.audio import encode_wav
from ringback.media.engine import MediaEngine, RtpSession
from ringback.sandbox.plan import NumberingPlan, PhoneSpec
from ringback.sip import sdp
from ringback.sip.events import Answered, Cancelled, Dtmf, Failed, Hangup
from ringback.sip.ua import IncomingCall, UserAgent

log = logging.getLogger("ringback.sandbox")


@dataclass
class Heard:
    """What one virtual phone experienced during one call."""

    call_sid: str
    number: str
    kind: str
    direction: str = "inbound-to-phone"  # or "outbound-from-phone" for `sandbox call`
    sip_call_id: str = ""
    result: str = "ringing"  # ringing | rejected | cancelled | answered | completed | failed
    sip_code: int | None = None
    invited_at: float = field(default_factory=time.time)
    answered_at: float | None = None
    hung_up_at: float | None = None
    hung_up_by: str | None = None  # phone | remote
    digits: str = ""
    digit_times: list[float] = field(default_factory=list)  # seconds after answer
    audio_seconds: float = 0.0
    # Internal: the frames received while answered (not serialised).
    frames: list[np.ndarray] = field(default_factory=list, repr=False)
    done: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def to_json(self) -> dict[str, Any]:
        # asdict() would deep-copy every field, the recorded frames included, only to drop them.
        d = {name: getattr(self, name) for name in _JSON_FIELDS}
        d["digit_times"] = list(self.digit_times)
        d["CallSid"] = self.call_sid
        return d

    def audio(self) -> np.ndarray:
        if not self.frames:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(self.frames)


# Heard's fields as serialised, in declaration order (frames and done are internal).
_JSON_FIELDS = tuple(f.name for f in fields(Heard) if f.name not in ("frames", "done"))


class SandboxNetwork:
    def __init__(
        self,
        plan: NumberingPlan,
        media: MediaEngine,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        heard_dir: str | Path | None = None,
        t1: float = 0.5,
        keep: int = 10000,
    ) -> None:
        self.plan = plan
        self.media = media
        self.ua = UserAgent(host, port, on_invite=self._on_invite, user_agent="ringback-sandbox", t1=t1)
        self.heard_dir = Path(heard_dir) if heard_dir else None
        self.heard: dict[str, Heard] = {}
        self.keep = keep
        self._tasks: set[asyncio.Task[Any]] = set()
        # invites.log stays open (opening it per INVITE cost more than the rest of a busy phone).
        self._invites: int | None = None  # fd of invites.log
        # What the phones heard goes to disk on one thread of its own, fed by a queue: cheaper per
        # call than an executor job (whose completion wakes the event loop for nothing).
        self._saves: queue.SimpleQueue[tuple[str, str, np.ndarray | None] | None] = queue.SimpleQueue()
        self._saver: threading.Thread | None = None

    @property
    def host(self) -> str:
        return self.ua.host

    @property
    def port(self) -> int:
        return self.ua.port

    async def start(self) -> None:
        if self.heard_dir:
            self.heard_dir.mkdir(parents=True, exist_ok=True)
        await self.ua.start()
        log.info("sandbox network on sip:%s:%d", self.ua.host, self.ua.port)

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(BaseException):
                await t
        await self.ua.close()
        if self._saver is not None:
            self._saves.put(None)
            await asyncio.to_thread(self._saver.join, 10.0)
            self._saver = None
        if self._invites is not None:
            os.close(self._invites)
            self._invites = None

    # ------------------------------------------------------------------ results

    def get(self, call_sid: str) -> Heard | None:
        return self.heard.get(call_sid)

    async def wait(self, call_sid: str, timeout: float = 30.0) -> Heard:
        """Wait until the phone reached for `call_sid` has finished its call."""
        deadline = time.monotonic() + timeout
        while call_sid not in self.heard:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no sandbox phone was called for {call_sid}")
            await asyncio.sleep(0.02)
        h = self.heard[call_sid]
        await asyncio.wait_for(h.done.wait(), max(0.01, deadline - time.monotonic()))
        return h

    def load(self, call_sid: str) -> tuple[dict[str, Any], bytes] | None:
        """JSON and WAV of a finished call, from memory or from disk."""
        h = self.heard.get(call_sid)
        if h is not None and h.done.is_set():
            return h.to_json(), encode_wav(h.audio())
        return load_heard(self.heard_dir, call_sid) if self.heard_dir else None

    def _log_invite(self, call_sid: str) -> None:
        """One line per INVITE a phone receives (invites.log): lets crash tests prove that no call
        is ever dialled twice, even across restarts of ringback."""
        if self.heard_dir:
            if self._invites is None:
                self._invites = os.open(self.heard_dir / "invites.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            # One write(2) per line: each reaches the kernel at once (a kill -9 loses none), without
            # a line-buffered text file's layers, which cost a busy phone 4% of the engine's CPU.
            os.write(self._invites, (call_sid + "\n").encode())

    def _register(self, h: Heard) -> None:
        self.heard[h.call_sid] = h
        while len(self.heard) > self.keep:
            self.heard.pop(next(iter(self.heard)))

    def _finish(self, h: Heard) -> None:
        h.audio_seconds = round(sum(len(f) for f in h.frames) / 8000.0, 3)
        h.done.set()
        if self.heard_dir:
            # Off the event loop: the phones share it with the media clock.
            data = json.dumps(h.to_json())
            audio = h.audio() if h.frames else None
            if self._saver is None:
                self._saver = threading.Thread(target=self._save_loop, name="sandbox-heard", daemon=True)
                self._saver.start()
            self._saves.put((h.call_sid, data, audio))

    def _save_loop(self) -> None:
        while (item := self._saves.get()) is not None:
            self._save(*item)

    def _save(self, call_sid: str, data: str, audio: np.ndarray | None) -> None:
        assert self.heard_dir is not None
        try:
            if audio is not None:
                _write(self.heard_dir / f"{call_sid}.wav", encode_wav(audio))
            _write(self.heard_dir / f"{call_sid}.json", data.encode())  # last: readers look for it first
        except OSError:
            log.exception("could not save what sandbox phone heard on %s", call_sid)

    # ------------------------------------------------------------------ phones answering

    async def _on_invite(self, inc: IncomingCall) -> None:
        try:
            number = numbers.from_e164(inc.request_uri_user)
        except numbers.NumberError:
            await inc.reject(404)
            return
        spec = self.plan.lookup(number)
        if spec is None:
            await inc.reject(404)
            return
        sid = _header(inc, "X-Ringback-CallSid") or inc.call_id
        self._log_invite(sid)
        h = Heard(call_sid=sid, number=number, kind=spec.kind, sip_call_id=inc.call_id)
        self._register(h)
        try:
            await self._answer_as(inc, spec, h)
        except Exception:
            log.exception("sandbox phone %s failed", number)
            h.result = "failed"
            with contextlib.suppress(Exception):
                await inc.reject(500)
        finally:
            if not h.done.is_set():
                self._finish(h)

    async def _answer_as(self, inc: IncomingCall, spec: PhoneSpec, h: Heard) -> None:
        if spec.reject is not None:
            if spec.ring:
                await inc.ringing(180)
                if await _cancelled_within(inc, spec.ring):
                    h.result, h.sip_code = "cancelled", 487
                    return
            await inc.reject(spec.reject)
            h.result, h.sip_code = "rejected", spec.reject
            return
        media = await self.media.open_session()
        try:
            try:
                answer, params = sdp.make_answer(inc.remote_sdp or b"", self.ua.host, media.local_port)
            except sdp.SdpError:
                await inc.reject(488)
                h.result, h.sip_code = "rejected", 488
                return
            media.set_remote(params.remote_host, params.remote_port, params.payload_type, params.telephone_event_pt)
            early: asyncio.Task[Any] | None = None
            if spec.early_media:
                await inc.ringing(183, answer)
                early = asyncio.ensure_future(media.play(tones.ringback(ms=120000.0)))
            else:
                await inc.ringing(180)
            ring = spec.ring if spec.ring is not None else spec.max_seconds
            cancelled = await _cancelled_within(inc, ring)
            if early is not None:
                early.cancel()
                media.stop_playback()
            if cancelled or spec.ring is None:
                if not cancelled:
                    await inc.reject(480)
                h.result, h.sip_code = ("cancelled", 487) if cancelled else ("no-answer", 480)
                return
            await inc.answer(answer)
            h.result, h.sip_code = "answered", 200
            await self._converse(inc, media, spec, h)
        finally:
            await media.close()

    async def _converse(self, dialog: Any, media: RtpSession, spec: PhoneSpec, h: Heard) -> None:
        """Once answered: record, speak, beep, press digits, hang up, as the spec says."""
        t0 = time.monotonic()
        h.answered_at = time.time()
        remove_tap = media.add_tap(lambda frame, now: h.frames.append(frame.copy()))
        hung = asyncio.Event()

        async def watch() -> None:
            while True:
                ev = await dialog.events.get()
                if isinstance(ev, Hangup | Failed | Cancelled):
                    h.hung_up_by = h.hung_up_by or "remote"
                    hung.set()
                    return
                if isinstance(ev, Dtmf):
                    media.inject_digit(ev.digit)

        async def listen() -> None:
            while True:
                d = await media.next_digit(None)
                if d is None:
                    return  # the media session was closed
                if d:
                    h.digits += d
                    h.digit_times.append(round(time.monotonic() - t0, 3))

        async def script() -> None:
            if spec.say:
                await asyncio.sleep(spec.say_after)
                pcm = await asyncio.to_thread(_speech, spec.say)
                await media.play(pcm)
            if spec.beep_hz:
                await media.play(tones.beep(spec.beep_hz, spec.beep_ms))

        async def press() -> None:
            if spec.digits:
                await asyncio.sleep(max(0.0, spec.digits_after - (time.monotonic() - t0)))
                await media.send_digits(spec.digits)

        async def go_dead() -> None:
            if spec.rtp_stop_after is not None:
                await asyncio.sleep(spec.rtp_stop_after)
                await media.close()

        def media_gone() -> None:
            # Like a real phone: no audio for the RTP timeout means the call is gone.
            h.hung_up_by = h.hung_up_by or "rtp-timeout"
            hung.set()

        media.on_rtp_timeout = media_gone
        tasks = [asyncio.ensure_future(c) for c in (watch(), listen(), script(), press(), go_dead())]
        limit = spec.hangup_after if spec.hangup_after is not None else spec.max_seconds
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(hung.wait(), timeout=limit)
            if not hung.is_set():
                h.hung_up_by = "phone"
                with contextlib.suppress(Exception):
                    await dialog.bye()
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(BaseException):
                    await t
            remove_tap()
            h.hung_up_at = time.time()
            h.result = "completed"

    # ------------------------------------------------------------------ phones calling out

    async def call(
        self,
        from_number: str,
        to_number: str,
        target_host: str,
        target_port: int,
        *,
        say: str | None = "Hello?",
        digits: str | None = None,
        digits_after: float = 2.0,
        hangup_after: float = 30.0,
        ring_timeout: float = 60.0,
    ) -> Heard:
        """A sandbox phone calls `to_number` at ringback (an inbound call); returns when it is done."""
        from_c, to_c = numbers.normalize(from_number), numbers.normalize(to_number)
        media = await self.media.open_session()
        h = Heard(call_sid="", number=from_c, kind="caller", direction="outbound-from-phone")
        try:
            offer = sdp.make_offer(self.ua.host, media.local_port)
            host = f"[{target_host}]" if ":" in target_host else target_host
            out = await self.ua.invite(
                f"sip:{numbers.to_e164(to_c)}@{host}:{target_port}",
                from_uri=f"sip:{numbers.to_e164(from_c)}@{self.ua.host}:{self.ua.port}",
                sdp=offer,
            )
            h.sip_call_id = h.call_sid = out.call_id
            self._register(h)
            deadline = time.monotonic() + ring_timeout
            while True:
                ev = await asyncio.wait_for(out.events.get(), max(0.01, deadline - time.monotonic()))
                if isinstance(ev, Answered):
                    params = sdp.parse_answer(ev.sdp)
                    media.set_remote(params.remote_host, params.remote_port, params.payload_type,
                                     params.telephone_event_pt)
                    h.result, h.sip_code = "answered", 200
                    break
                if isinstance(ev, Failed):
                    h.result, h.sip_code = "failed", ev.code
                    return h
            spec = PhoneSpec(kind="caller", say=say, digits=digits, digits_after=digits_after,
                             hangup_after=hangup_after)
            await self._converse(out, media, spec, h)
            return h
        finally:
            await media.close()
            if not h.done.is_set():
                if not h.call_sid:
                    h.call_sid = f"failed-{time.time()}"
                self._finish(h)


def load_heard(heard_dir: str | Path, call_sid: str) -> tuple[dict[str, Any], bytes] | None:
    """What a phone heard, from the files a sandbox network (maybe another process) wrote."""
    if not call_sid.replace("-", "").replace(".", "").replace("@", "").isalnum():
        return None  # never let a request path walk the file system
    j = Path(heard_dir) / f"{call_sid}.json"
    w = Path(heard_dir) / f"{call_sid}.wav"
    if not j.exists():
        return None
    return json.loads(j.read_text()), (w.read_bytes() if w.exists() else encode_wav(np.zeros(0, np.int16)))


def _write(path: Path, data: bytes) -> None:
    """Path.write_bytes without its file object (this runs once or twice per sandbox call)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _speech(text: str) -> np.ndarray:
    from ringback.tts import synth

    return synth(text, voice="woman")


def _header(inc: IncomingCall, name: str) -> str | None:
    req = getattr(inc, "request", None)
    if req is None:
        return None
    getter = getattr(req, "header", None) or getattr(req, "get", None)
    if getter is None:
        return None
    with contextlib.suppress(Exception):
        value = getter(name)
        if value:
            return str(value)
    return None


async def _cancelled_within(inc: IncomingCall, seconds: float) -> bool:
    """Ring for `seconds`; True if the caller CANCELled (or hung up) meanwhile."""
    deadline = time.monotonic() + seconds
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        try:
            ev = await asyncio.wait_for(inc.events.get(), remaining)
        except TimeoutError:
            return False
        if isinstance(ev, Cancelled | Hangup | Failed):
            return True
