"""The caller ID validation call (POST /OutgoingCallerIds).

After CallDelay seconds ringback calls the number, asks for the 6-digit code on the keypad and,
when the digits match, makes the number a validated OutgoingCallerId of the account.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from ringback import numbers
from ringback.engine.leg import place_call
from ringback.store.models import CallerId, IncomingNumber, ValidationRequest, utcnow

if TYPE_CHECKING:
    from ringback.engine.context import EngineContext

log = logging.getLogger("ringback.validation")

RING_SECONDS = 60.0
DIGIT_TIMEOUT = 8.0
ATTEMPTS = 2


async def _say(leg: Any, text: str) -> None:
    from ringback.tts import synth

    pcm = await asyncio.to_thread(synth, text, voice="woman")
    await leg.media.play(pcm)


async def _gather(leg: Any, n: int) -> str:
    digits = ""
    while len(digits) < n and not leg.hung_up.is_set():
        d = await leg.media.next_digit(DIGIT_TIMEOUT)
        if d is None:
            break
        if d == "#":
            break
        digits += d
    return digits


async def run_validation(ctx: EngineContext, validation_sid: str) -> None:
    def load(s: Any) -> tuple[str, str, str, int, str, str] | None:
        v = s.get(ValidationRequest, validation_sid)
        if v is None or v.status != "pending":
            return None
        v.status, v.date_updated = "calling", utcnow()
        caller = s.scalar(select(IncomingNumber.phone_number).where(
            IncomingNumber.account_sid == v.account_sid).limit(1)) or v.phone_number
        return v.account_sid, v.phone_number, v.validation_code, v.call_delay, v.friendly_name, caller

    loaded = await ctx.db(load)
    if loaded is None:
        return
    account_sid, number, code, delay, friendly, caller = loaded
    status = "failed"
    try:
        await asyncio.sleep(max(0, delay))
        res = await place_call(ctx, numbers.to_e164(number), numbers.to_e164(caller), timeout=RING_SECONDS,
                               headers={"X-Ringback-CallSid": validation_sid}, label=validation_sid)
        if res.leg is None:
            log.info("validation call to %s not answered (%s)", number, res.code)
            return
        leg = res.leg
        try:
            for _ in range(ATTEMPTS):
                await _say(leg, "This is the ringback caller I D validation service. "
                                "Please enter your six digit validation code.")
                got = await _gather(leg, len(code))
                if got == code:
                    status = "validated"
                    await _say(leg, "Thank you. Your number is now validated. Goodbye.")
                    break
                if leg.hung_up.is_set():
                    break
                await _say(leg, "That code was not correct.")
        finally:
            await leg.close()
    except Exception:
        log.exception("validation %s failed", validation_sid)
    finally:
        def finish(s: Any) -> None:
            now = utcnow()
            s.execute(update(ValidationRequest).where(ValidationRequest.sid == validation_sid)
                      .values(status=status, date_updated=now))
            if status == "validated" and not s.scalar(select(CallerId.sid).where(
                    CallerId.account_sid == account_sid, CallerId.phone_number == number)):
                from ringback.sids import new_sid

                s.add(CallerId(sid=new_sid("PN"), account_sid=account_sid, phone_number=number,
                               friendly_name=(friendly or numbers.friendly(number))[:64],
                               date_created=now, date_updated=now))

        with contextlib.suppress(Exception):
            await ctx.db(finish)
