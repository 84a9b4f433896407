"""The TwiML interpreter's Channel, implemented on a live call leg (ringback/twiml/channel.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from ringback import numbers
from ringback.engine.leg import CallLeg
from ringback.engine.notify import add_notification
from ringback.sids import new_sid
from ringback.store.models import CallerId, IncomingNumber
from ringback.store.records import create_recording, recording_path
from ringback.twiml.channel import (
    ConferenceOptions,
    ConferenceResult,
    DialResult,
    DialTarget,
    Notification,
    Pcm,
    RecordingInfo,
    Tap,
)

if TYPE_CHECKING:
    from ringback.engine.context import EngineContext

log = logging.getLogger("ringback.channel")


async def race_hangup(aw: Any, hung_up: asyncio.Event) -> tuple[bool, Any]:
    """Await `aw` unless `hung_up` fires first (then cancel it). (completed, result)."""
    task = asyncio.ensure_future(aw)
    if hung_up.is_set():
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        return False, None
    hang = asyncio.ensure_future(hung_up.wait())
    try:
        done, _ = await asyncio.wait({task, hang}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        task.cancel()
        raise
    finally:
        hang.cancel()
    if task in done:
        return True, task.result()
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
    return False, None


class LegChannel:
    """Channel over a CallLeg. `caller`/`called` are canonical numbers of the call."""

    def __init__(
        self,
        ctx: EngineContext,
        leg: CallLeg,
        *,
        call_sid: str,
        account_sid: str,
        auth_token: str,
        params: dict[str, str],
        caller: str,
        called: str,
        flags: int,
        is_segment: bool = False,
    ) -> None:
        self.ctx = ctx
        self.leg = leg
        self.call_sid = call_sid
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.params = params
        self.caller = caller
        self.called = called
        self.flags = flags
        self.is_segment = is_segment
        self.hung_up = leg.hung_up

    # ------------------------------------------------------------------ media

    async def play(self, pcm: Pcm, interruptible: bool = False) -> str | None:
        done, result = await race_hangup(self.leg.media.play(pcm, interruptible=interruptible), self.hung_up)
        if not done:
            self.leg.media.stop_playback()
        elif result is not None:
            await self.leg.media.next_digit(0)  # the key that cut the audio is consumed (twiml.channel contract)
        return result if done else None

    async def next_digit(self, timeout: float) -> str | None:
        done, result = await race_hangup(self.leg.media.next_digit(timeout), self.hung_up)
        return result if done else None

    def flush_digits(self) -> None:
        self.leg.media.flush_digits()

    def add_tap(self, fn: Tap) -> Callable[[], None]:
        return self.leg.media.add_tap(fn)

    async def hangup(self) -> None:
        await self.leg.hangup()

    # ------------------------------------------------------------------ bridging

    async def dial(
        self,
        targets: list[DialTarget],
        *,
        caller_id: str,
        timeout: float,
        time_limit: float,
        hangup_on_star: bool,
    ) -> DialResult:
        from ringback.engine.dial import dial

        return await dial(self, targets, caller_id=caller_id, timeout=timeout, time_limit=time_limit,
                          hangup_on_star=hangup_on_star)

    async def conference(self, options: ConferenceOptions) -> ConferenceResult:
        from ringback.engine.conference import join

        return await join(self, options)

    # ------------------------------------------------------------------ account data

    async def check_caller_id(self, number: str) -> bool:
        try:
            canon = numbers.normalize(number)
        except numbers.NumberError:
            return False
        if canon in (self.caller, self.called):
            return True
        account = self.account_sid

        def q(s: Any) -> bool:
            if s.scalar(select(IncomingNumber.sid).where(
                IncomingNumber.account_sid == account, IncomingNumber.phone_number == canon
            )):
                return True
            return bool(s.scalar(select(CallerId.sid).where(
                CallerId.account_sid == account, CallerId.phone_number == canon
            )))

        return await self.ctx.db(q, readonly=True)

    async def notify(self, notification: Notification) -> None:
        n = notification
        await self.ctx.db(
            lambda s: add_notification(
                s, self.account_sid, self.call_sid, n.code, n.message, level=n.log,
                request_url=n.request_url, request_method=n.request_method,
                request_variables=n.request_variables, response_headers=n.response_headers,
                response_body=n.response_body,
            )
        )

    async def save_recording(self, pcm: Pcm) -> RecordingInfo:
        from ringback.media.audio import encode_wav

        sid = new_sid("RE")
        path = Path(recording_path(str(self.ctx.settings.recordings_dir), self.account_sid, sid)).resolve()
        data = encode_wav(pcm)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

        await asyncio.to_thread(write)
        duration = len(pcm) / 8000.0
        await self.ctx.db(
            lambda s: create_recording(s, self.account_sid, self.call_sid, round(duration), str(path), sid=sid)
        )
        url = f"{self.ctx.settings.base_url}/2008-08-01/Accounts/{self.account_sid}/Recordings/{sid}"
        return RecordingInfo(sid=sid, url=url, duration=duration)

    async def transcribe(self, recording: RecordingInfo, pcm: Pcm, callback_url: str | None) -> None:
        from ringback.engine.transcribe import start_transcription

        start_transcription(self, recording, pcm, callback_url)
