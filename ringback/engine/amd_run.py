"""Run the answering-machine detector on an answered leg's audio (IfMachine).

The detector is fed from the shared 20 ms media clock, frame by frame from the moment of answer
(after SendDigits, when given). For a machine under IfMachine=Continue it keeps listening until
the greeting's beep ends (or a long silence stands in for it), so the app's audio lands on the
recording.

Cost: every call under analysis is fed through ONE ``DetectorBank`` pass per tick. A per-clock
``_AmdBatcher`` joins the clock as a mixer (``MediaClock.add_mixer``): the clock calls
``_mix(rx, tx, present)`` once per tick after it has decoded every session's frame into ``rx``
(one row per session slot), so the batcher reads its calls' rows straight from there, with no
per-call tap, copy or decode. It only reads; it never writes ``tx``. It leaves the clock when no
call is under analysis, so idle ticks pay nothing.

``_mix`` runs on the clock's thread (ringback.media.clock): the detectors are fed there, their
events reach the call's asyncio queue through the clock's ``call_soon`` (after the tick, on the
event loop), and the event loop changes the batcher's entries, or finishes a detector, only
holding the clock's lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ringback.amd.detector import Detector, DetectorBank
from ringback.amd.events import AmdEvent, GreetingEnd, Verdict
from ringback.amd.params import AmdParams
from ringback.media.clock import MediaClock

if TYPE_CHECKING:
    from ringback.engine.context import EngineContext
    from ringback.engine.leg import CallLeg
    from ringback.media.engine import RtpSession

log = logging.getLogger("ringback.amd")


def params_from_settings(overrides: dict[str, float]) -> AmdParams:
    names = {f.name: f.type for f in dataclasses.fields(AmdParams)}
    clean: dict[str, float | int] = {}
    for key, value in overrides.items():
        if key not in names:
            raise ValueError(f"unknown AMD parameter {key!r}; known: {', '.join(sorted(names))}")
        clean[key] = int(value) if names[key] in ("int", int) else float(value)
    return AmdParams().replace(**clean)


@dataclasses.dataclass(slots=True)
class _Entry:
    session: RtpSession
    detector: Detector
    events: asyncio.Queue[AmdEvent]


class _AmdBatcher:
    """All calls under analysis on one media clock; a ``ClockMixer`` that only reads ``rx``."""

    def __init__(self, clock: MediaClock) -> None:
        self._clock = clock
        self._entries: list[_Entry] = []
        self._bank = DetectorBank()
        self._joined = False
        # A stand-in clock without a thread (tests, bench/amd) has neither: events go at once.
        self.lock: contextlib.AbstractContextManager[Any] = getattr(clock, "lock", contextlib.nullcontext())
        self._post: Callable[..., None] = getattr(clock, "call_soon", _call_now)

    def add(self, session: RtpSession, detector: Detector) -> _Entry:
        entry = _Entry(session, detector, asyncio.Queue())
        with self.lock:
            self._entries.append(entry)
            if not self._joined:
                self._clock.add_mixer(self)
                self._joined = True
        return entry

    def discard(self, entry: _Entry) -> None:
        with self.lock:
            if entry in self._entries:
                self._entries.remove(entry)
            self._leave_if_idle()

    def remove(self, session: object) -> None:
        """Called by MediaEngine when a session closes (a hangup mid-analysis)."""
        with self.lock:
            self._entries = [e for e in self._entries if e.session is not session]
            self._leave_if_idle()

    def _leave_if_idle(self) -> None:
        if not self._entries and self._joined:
            self._clock.remove_mixer(self)
            self._joined = False

    def _mix(self, rx: npt.NDArray[np.int16], tx: npt.NDArray[np.int32], present: npt.NDArray[np.bool_]) -> None:
        live = [e for e in self._entries if not e.detector.done and 0 <= e.session._slot < rx.shape[0]]
        if not live:
            return
        # DetectorBank wants one peak-search band per pass; calls normally share the server's
        # parameters, so this is one group.
        groups: dict[tuple[float, float], list[_Entry]] = {}
        for e in live:
            p = e.detector.params
            groups.setdefault((p.beep_min_hz, p.beep_max_hz), []).append(e)
        for group in groups.values():
            slots = np.fromiter((e.session._slot for e in group), dtype=np.intp, count=len(group))
            # A session with no packet this tick has a zero row in rx: silence, as the
            # detector should hear it.
            for i, ev in self._bank.feed([e.detector for e in group], rx[slots]):
                self._post(group[i].events.put_nowait, ev)


def _call_now(fn: Callable[..., object], *args: Any) -> None:
    fn(*args)


_batchers: weakref.WeakKeyDictionary[MediaClock, _AmdBatcher] = weakref.WeakKeyDictionary()


def _batcher_for(session: RtpSession) -> _AmdBatcher:
    clock = session._engine.clock
    b = _batchers.get(clock)
    if b is None:
        b = _batchers[clock] = _AmdBatcher(clock)
    return b


async def analyse(ctx: EngineContext, leg: CallLeg, *, continue_mode: bool) -> str:
    """'human', 'machine' or 'unknown'. Returns, for a machine under Continue, only once its
    greeting is over (beep end, long silence, or the bound)."""
    params = params_from_settings(ctx.settings.amd)
    det = Detector(params)
    batcher = _batcher_for(leg.media)
    entry = batcher.add(leg.media, det)
    events = entry.events
    verdict: Verdict | None = None
    try:
        limit = params.total_analysis_ms / 1000.0 + 1.0
        verdict = await _next(events, leg, limit, Verdict)
        if verdict is None:
            batcher.discard(entry)  # out of the ticks first: finish() must not race a feed
            verdict = det.finish()
        log.info("call %s: AMD %s (%s) at %.2fs", leg.label, verdict.answered_by, verdict.cause, verdict.decided_at)
        if verdict.answered_by == "machine" and continue_mode:
            bound = max(0.5, params.max_greeting_ms / 1000.0 - verdict.decided_at + 1.0)
            end = await _next(events, leg, bound, GreetingEnd)
            if end is not None:
                log.info("call %s: greeting ended (%s) at %.2fs", leg.label, end.kind, end.at)
        return verdict.answered_by
    finally:
        batcher.discard(entry)


async def _next(queue: asyncio.Queue, leg: CallLeg, timeout: float, kind: type):  # type: ignore[no-untyped-def]
    """The next event of `kind`, or None on timeout or hangup."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0 or leg.hung_up.is_set():
            return None
        get = asyncio.ensure_future(queue.get())
        hang = asyncio.ensure_future(leg.hung_up.wait())
        done, _ = await asyncio.wait({get, hang}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
        hang.cancel()
        if get not in done:
            get.cancel()
            return None
        ev = get.result()
        if isinstance(ev, kind):
            return ev
