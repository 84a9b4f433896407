"""Run the answering-machine detector on an answered leg's audio (IfMachine).

The detector is fed from the leg's tap on the shared media clock, frame by frame from the moment
of answer (after SendDigits, when given). For a machine under IfMachine=Continue it keeps
listening until the greeting's beep ends (or a long silence stands in for it), so the app's
audio lands on the recording.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import TYPE_CHECKING

import numpy as np

from ringback.amd.detector import Detector
from ringback.amd.events import GreetingEnd, Verdict
from ringback.amd.params import AmdParams

if TYPE_CHECKING:
    from ringback.engine.context import EngineContext
    from ringback.engine.leg import CallLeg

log = logging.getLogger("ringback.amd")


def params_from_settings(overrides: dict[str, float]) -> AmdParams:
    names = {f.name: f.type for f in dataclasses.fields(AmdParams)}
    clean: dict[str, float | int] = {}
    for key, value in overrides.items():
        if key not in names:
            raise ValueError(f"unknown AMD parameter {key!r}; known: {', '.join(sorted(names))}")
        clean[key] = int(value) if names[key] in ("int", int) else float(value)
    return AmdParams().replace(**clean)


async def analyse(ctx: EngineContext, leg: CallLeg, *, continue_mode: bool) -> str:
    """'human', 'machine' or 'unknown'. Returns, for a machine under Continue, only once its
    greeting is over (beep end, long silence, or the bound)."""
    params = params_from_settings(ctx.settings.amd)
    det = Detector(params)
    events: asyncio.Queue[Verdict | GreetingEnd] = asyncio.Queue()

    def tap(frame: np.ndarray, now: float) -> None:
        if det.done:
            return
        ev = det.feed(frame)
        while ev is not None:
            events.put_nowait(ev)
            ev = det.next_event()

    remove = leg.media.add_tap(tap)
    verdict: Verdict | None = None
    try:
        limit = params.total_analysis_ms / 1000.0 + 1.0
        verdict = await _next(events, leg, limit, Verdict)
        if verdict is None:
            verdict = det.finish()
        log.info("call %s: AMD %s (%s) at %.2fs", leg.label, verdict.answered_by, verdict.cause, verdict.decided_at)
        if verdict.answered_by == "machine" and continue_mode:
            bound = max(0.5, params.max_greeting_ms / 1000.0 - verdict.decided_at + 1.0)
            end = await _next(events, leg, bound, GreetingEnd)
            if end is not None:
                log.info("call %s: greeting ended (%s) at %.2fs", leg.label, end.kind, end.at)
        return verdict.answered_by
    finally:
        remove()


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
