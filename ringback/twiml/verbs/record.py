"""<Record>: beep, record until silence / finish key / maxLength / hangup, trim,
store a Recording, optionally transcribe, then request the action."""

from __future__ import annotations

import asyncio

import numpy as np

from ringback.twiml import media
from ringback.twiml.channel import Pcm
from ringback.twiml.context import Context, End, Goto, Step
from ringback.twiml.parse import Record

VOICE_DBFS = -40.0  # a frame louder than this is speech, not silence
POLL = 0.05  # seconds between checks of the silence and length limits


async def capture(verb: Record, ctx: Context) -> tuple[Pcm, str]:
    """Record from the caller; returns (audio, the finish key pressed or "")."""
    ch = ctx.channel
    loop = asyncio.get_running_loop()
    frames: list[Pcm] = []
    start = loop.time()
    last_voice = start

    def tap(frame: Pcm, now: float) -> None:
        nonlocal last_voice
        frames.append(np.array(frame, dtype=np.int16, copy=True))
        if media.frame_dbfs(frame) > VOICE_DBFS:
            last_voice = loop.time()

    remove = ch.add_tap(tap)
    key = ""
    try:
        while not ctx.hung_up:
            now = loop.time()
            if now - start >= verb.max_length or now - last_voice >= verb.timeout:
                break
            digit = await ch.next_digit(POLL)
            if digit is not None and digit in verb.finish_on_key:
                key = digit
                break
    finally:
        remove()
    pcm = np.concatenate(frames) if frames else np.zeros(0, dtype=np.int16)
    return pcm[: int(verb.max_length * media.RATE)], key


async def execute(verb: Record, ctx: Context) -> Step:
    ch = ctx.channel
    if verb.play_beep:
        await ctx.play(media.beep())
        if ctx.hung_up:
            return End("hung_up")
    ch.flush_digits()
    raw, key = await capture(verb, ctx)
    hung_up = ctx.hung_up
    pcm = media.trim(raw)
    if pcm.size == 0:
        # An empty recording does not trigger the action.
        return End("hung_up") if hung_up else None
    info = await ch.save_recording(pcm)
    if verb.transcribe:
        callback = ctx.resolve(verb.transcribe_callback) if verb.transcribe_callback else None
        await ch.transcribe(info, pcm, callback)
    params = {"RecordingUrl": info.url, "Duration": str(int(round(info.duration))), "Digits": key}
    return Goto(ctx.resolve(verb.action), verb.method, params, after_hangup=hung_up)
