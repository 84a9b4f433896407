"""FakeChannel: a scripted call leg for interpreter tests (real time, fast plays)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

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

TOKEN = "0123456789abcdef0123456789abcdef"
ACCOUNT = "AC" + "1" * 32
CALL = "CA" + "2" * 32


@dataclass
class Played:
    pcm: Pcm
    interruptible: bool
    start: float
    interrupted_by: str | None = None


@dataclass
class DialCall:
    targets: list[DialTarget]
    caller_id: str
    timeout: float
    time_limit: float
    hangup_on_star: bool


class FakeChannel:
    def __init__(
        self,
        *,
        digits: list[tuple[float, str]] | None = None,
        hangup_at: float | None = None,
        talk: list[tuple[float, float]] | None = None,
        speed: float = 40.0,
        is_segment: bool = False,
        dial_result: DialResult | None = None,
        dial_seconds: float = 0.05,
        allowed_caller_ids: set[str] | None = None,
    ) -> None:
        self.call_sid = CALL
        self.account_sid = ACCOUNT
        self.params = {
            "CallSid": CALL,
            "CallGuid": CALL,
            "AccountSid": ACCOUNT,
            "AccountGuid": ACCOUNT,
            "Caller": "4155550100",
            "Called": "5005551000",
            "CallStatus": "in-progress",
        }
        self.hung_up = asyncio.Event()
        self.is_segment = is_segment
        self.speed = speed  # plays last len/8000/speed seconds
        self.script_digits = sorted(digits or [])
        self.hangup_at = hangup_at
        self.talk = talk or []  # (start, end) seconds when the caller speaks loudly
        self.dial_result = dial_result or DialResult("answered", 1.0, "CS" + "3" * 32, "callee")
        self.dial_seconds = dial_seconds
        self.allowed_caller_ids = allowed_caller_ids or set()
        self.plays: list[Played] = []
        self.notifications: list[Notification] = []
        self.recordings: list[tuple[RecordingInfo, Pcm]] = []
        self.transcriptions: list[tuple[RecordingInfo, str | None]] = []
        self.dials: list[DialCall] = []
        self.conferences: list[ConferenceOptions] = []
        self.hangup_called = False
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._taps: list[Tap] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.t0 = 0.0
        self.conference_wait_seconds = 0.0

    # ---- scripting

    def now(self) -> float:
        return asyncio.get_running_loop().time() - self.t0

    async def __aenter__(self) -> FakeChannel:
        self.t0 = asyncio.get_running_loop().time()
        self._tasks.append(asyncio.create_task(self._press()))
        self._tasks.append(asyncio.create_task(self._frames()))
        if self.hangup_at is not None:
            self._tasks.append(asyncio.create_task(self._remote_hangup(self.hangup_at)))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for t in self._tasks:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t

    async def _press(self) -> None:
        for at, d in self.script_digits:
            await asyncio.sleep(max(0.0, at - self.now()))
            self._queue.put_nowait(d)

    async def _remote_hangup(self, at: float) -> None:
        await asyncio.sleep(at)
        self.hung_up.set()

    async def _frames(self) -> None:
        rng = np.random.default_rng(1)
        while not self.hung_up.is_set():
            await asyncio.sleep(0.02)
            t = self.now()
            loud = any(a <= t < b for a, b in self.talk)
            frame = (rng.normal(0, 6000 if loud else 3, 160)).astype(np.int16)
            for tap in list(self._taps):
                tap(frame, t)

    # ---- Channel

    async def play(self, pcm: Pcm, interruptible: bool = False) -> str | None:
        rec = Played(np.asarray(pcm), interruptible, self.now())
        self.plays.append(rec)
        if self.hung_up.is_set():
            return None
        duration = len(pcm) / 8000 / self.speed
        waits: list[asyncio.Task[object]] = [
            asyncio.create_task(asyncio.sleep(duration)),
            asyncio.create_task(self.hung_up.wait()),
        ]
        getter: asyncio.Task[object] | None = None
        if interruptible:
            getter = asyncio.create_task(self._queue.get())
            waits.append(getter)
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        if getter is not None and getter.done() and not getter.cancelled():
            rec.interrupted_by = str(getter.result())
            return rec.interrupted_by
        return None

    async def next_digit(self, timeout: float) -> str | None:
        if not self._queue.empty():
            return self._queue.get_nowait()
        if self.hung_up.is_set():
            return None
        getter = asyncio.create_task(self._queue.get())
        hup = asyncio.create_task(self.hung_up.wait())
        try:
            await asyncio.wait([getter, hup], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            hup.cancel()
            getter.cancel()
        if getter.done() and not getter.cancelled():
            return str(getter.result())
        return None

    def flush_digits(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()

    def add_tap(self, fn: Tap) -> Callable[[], None]:
        self._taps.append(fn)
        return lambda: self._taps.remove(fn)

    async def hangup(self) -> None:
        self.hangup_called = True
        self.hung_up.set()

    async def dial(
        self, targets: list[DialTarget], *, caller_id: str, timeout: float, time_limit: float,
        hangup_on_star: bool,
    ) -> DialResult:
        self.dials.append(DialCall(targets, caller_id, timeout, time_limit, hangup_on_star))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.hung_up.wait(), self.dial_seconds)
        return self.dial_result

    async def conference(self, options: ConferenceOptions) -> ConferenceResult:
        self.conferences.append(options)
        if options.wait is not None and self.conference_wait_seconds:
            task = asyncio.create_task(options.wait())
            await asyncio.sleep(self.conference_wait_seconds)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return ConferenceResult("completed", 1.0, "caller")

    async def check_caller_id(self, number: str) -> bool:
        return number in self.allowed_caller_ids or number == self.params["Caller"]

    async def notify(self, notification: Notification) -> None:
        self.notifications.append(notification)

    async def save_recording(self, pcm: Pcm) -> RecordingInfo:
        n = len(self.recordings) + 1
        info = RecordingInfo(f"RE{n:032d}", f"http://rb.example/Recordings/RE{n:032d}", len(pcm) / 8000)
        self.recordings.append((info, pcm))
        return info

    async def transcribe(self, recording: RecordingInfo, pcm: Pcm, callback_url: str | None) -> None:
        self.transcriptions.append((recording, callback_url))

    # ---- helpers for assertions

    def codes(self) -> list[int]:
        return [n.code for n in self.notifications]
