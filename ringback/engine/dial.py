"""<Dial>: ring every target at once, first to answer wins, bridge the two legs.

Each leg is a Segment: a calls row with parent_sid and call_segment_sid, Flags 4 OR-ed with the
parent's direction bits (DESIGN.md), never listed in /Calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ringback import numbers
from ringback.engine import outcome as oc
from ringback.engine.leg import CallLeg, PlaceResult, place_call
from ringback.engine.params import call_params
from ringback.sids import new_sid
from ringback.store import queue
from ringback.store.models import FLAG_DIAL, Call, utcnow
from ringback.twiml.channel import DialResult, DialTarget

if TYPE_CHECKING:
    from ringback.engine.channel import LegChannel

log = logging.getLogger("ringback.dial")


@dataclass
class _Attempt:
    target: DialTarget
    number: str  # canonical
    segment_sid: str
    cancel: asyncio.Event
    task: asyncio.Task[PlaceResult] | None = None
    result: PlaceResult | None = None
    answered_at: Any = None


def _worst_failure(results: list[PlaceResult]) -> str:
    """The <Dial> action's DialStatus when nobody answered: busy beats no-answer beats failed."""
    verbs = [oc.failure_outcome(r.code).dial_verb_status for r in results]
    for status in ("busy", "no-answer"):
        if status in verbs:
            return status
    return "failed"


async def dial(
    chan: LegChannel,
    targets: list[DialTarget],
    *,
    caller_id: str,
    timeout: float,
    time_limit: float,
    hangup_on_star: bool,
) -> DialResult:
    ctx = chan.ctx
    caller = numbers.try_normalize(caller_id) or chan.caller
    attempts: list[_Attempt] = []
    bad: list[PlaceResult] = []
    for t in targets:
        canon = numbers.try_normalize(t.number)
        if canon is None:
            bad.append(PlaceResult(None, 484, "invalid number"))
            continue
        attempts.append(_Attempt(t, canon, new_sid("CA"), asyncio.Event()))
    if not attempts:
        return DialResult(status="failed")

    now = utcnow()
    parent_flags = chan.flags & 3

    def create(s: Any) -> None:
        for a in attempts:
            s.add(Call(
                sid=a.segment_sid, account_sid=chan.account_sid, parent_sid=chan.call_sid,
                call_segment_sid=a.segment_sid, called=a.number, caller=caller,
                phone_number_sid=None, status=oc.IN_PROGRESS, state="dialing", flags=FLAG_DIAL | parent_flags,
                url=None, method="POST", timeout=int(timeout), start_time=now, date_created=now, date_updated=now,
            ))

    await ctx.db(create)

    for a in attempts:
        a.task = asyncio.ensure_future(
            place_call(ctx, numbers.to_e164(a.number), numbers.to_e164(caller), timeout=timeout,
                       headers={"X-Ringback-CallSid": a.segment_sid}, cancel=a.cancel, label=a.segment_sid)
        )

    winner: _Attempt | None = None
    pending = {a.task for a in attempts if a.task is not None}
    hang = asyncio.ensure_future(chan.hung_up.wait())
    try:
        while pending and winner is None:
            done, pending = await asyncio.wait(pending | {hang}, return_when=asyncio.FIRST_COMPLETED)
            pending.discard(hang)
            if hang in done:
                break
            for a in attempts:
                if a.task in done:
                    a.result = a.task.result()
                    if a.result.leg is not None and winner is None:
                        winner = a
                        a.answered_at = utcnow()
        # Stop ringing everyone else; a leg that answered in the race is hung up.
        for a in attempts:
            if a is not winner:
                a.cancel.set()
        for a in attempts:
            if a is not winner and a.task is not None and a.result is None:
                with contextlib.suppress(Exception):
                    a.result = await a.task
            if a is not winner and a.result is not None and a.result.leg is not None:
                await a.result.leg.close()
                a.result = PlaceResult(None, 487, "another leg answered")
    finally:
        hang.cancel()

    if winner is None or winner.result is None or winner.result.leg is None:
        results = [a.result for a in attempts if a.result is not None] + bad
        status = _worst_failure(results) if results else "no-answer"
        if chan.hung_up.is_set() and not results:
            status = "no-answer"
        await _finish_segments(chan, attempts, None, 0.0)
        return DialResult(status=status)  # type: ignore[arg-type]

    leg = winner.result.leg
    started = time.monotonic()
    ended_by = "none"
    try:
        if winner.target.url and not await _whisper(chan, leg, winner):
            return DialResult(status="no-answer", segment_sid=winner.segment_sid)
        if winner.target.send_digits:
            await leg.media.send_digits(winner.target.send_digits)
        ended_by = await _bridge(chan, leg, time_limit=time_limit, hangup_on_star=hangup_on_star)
    finally:
        duration = time.monotonic() - started
        await leg.close()
        await _finish_segments(chan, attempts, winner, duration)
    return DialResult(status="answered", duration=duration, segment_sid=winner.segment_sid,
                      ended_by=ended_by)  # type: ignore[arg-type]


async def _whisper(chan: LegChannel, leg: CallLeg, a: _Attempt) -> bool:
    """Run the Number's url document on the callee's leg; False if it hung up (declined)."""
    from ringback.engine.channel import LegChannel
    from ringback.twiml.interpreter import run_whisper

    callee = LegChannel(
        chan.ctx, leg, call_sid=chan.call_sid, account_sid=chan.account_sid, auth_token=chan.auth_token,
        params=call_params(chan.call_sid, chan.account_sid, chan.caller, a.number, "in-progress"),
        caller=chan.caller, called=a.number, flags=FLAG_DIAL | (chan.flags & 3), is_segment=True,
    )
    client = chan.ctx.app_client(chan.account_sid, chan.auth_token)
    try:
        await run_whisper(callee, client, a.target.url or "", a.target.method or "POST")
    finally:
        await client.aclose()
    return not leg.hung_up.is_set()


async def _bridge(chan: LegChannel, leg: CallLeg, *, time_limit: float, hangup_on_star: bool) -> str:
    """Both legs hear each other until one hangs up, the time limit, or * (hangupOnStar)."""
    from ringback.media.mixer import Mixer

    mixer = Mixer(chan.ctx.media)
    mixer.add(chan.leg.media)
    mixer.add(leg.media)
    caller_gone = asyncio.ensure_future(chan.hung_up.wait())
    callee_gone = asyncio.ensure_future(leg.hung_up.wait())
    waiters: set[asyncio.Future[Any]] = {caller_gone, callee_gone}
    star: asyncio.Future[Any] | None = None
    if hangup_on_star:
        star = asyncio.ensure_future(chan.leg.wait_key("*"))
        waiters.add(star)
    try:
        done, _ = await asyncio.wait(waiters, timeout=time_limit, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
        mixer.remove(chan.leg.media)
        mixer.remove(leg.media)
        close = getattr(mixer, "close", None)
        if close is not None:
            res = close()
            if asyncio.iscoroutine(res):
                await res
    if caller_gone in done:
        return "caller"
    if callee_gone in done:
        return "callee"
    if star is not None and star in done:
        return "star"
    return "time-limit"



async def _finish_segments(
    chan: LegChannel, attempts: list[_Attempt], winner: _Attempt | None, duration: float
) -> None:
    def work(s: Any) -> None:
        for a in attempts:
            if a is winner:
                # Answered (a declining whisper still answered): Complete, with its duration.
                queue.finalize(s, a.segment_sid, status=oc.COMPLETE, sip_code=200, answered_at=a.answered_at)
            else:
                code = a.result.code if a.result else None
                out = oc.failure_outcome(code)
                queue.finalize(s, a.segment_sid, status=out.rest_status, sip_code=code,
                               dial_status=out.dial_verb_status)

    await chan.ctx.db(work)
