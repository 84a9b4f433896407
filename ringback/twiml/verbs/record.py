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
FRAME = 160  # samples per received frame (20 ms)
WALL_SLACK = 5.0  # seconds past maxLength after which a recording with no audio arriving ends


async def capture(verb: Record, ctx: Context) -> tuple[Pcm, str]:
    """Record from the caller; returns (audio, the finish key pressed or "").

    maxLength and the silence timeout count received 20 ms frames (media time), not the event
    loop's clock, so a busy process records exactly maxLength seconds; a wall-clock bound a few
    seconds longer still ends a recording whose audio stopped arriving.
    """
    ch = ctx.channel
    loop = asyncio.get_running_loop()
    frames: list[Pcm] = []
    limit = max(1, int(verb.max_length * media.RATE) // FRAME)
    quiet_limit = max(1, int(verb.timeout * media.RATE) // FRAME)
    quiet = 0
    full = asyncio.Event()

    def tap(frame: Pcm, now: float) -> None:
        nonlocal quiet
        if full.is_set():
            return
        frames.append(np.array(frame, dtype=np.int16, copy=True))
        quiet = 0 if media.frame_dbfs(frame) > VOICE_DBFS else quiet + 1
        if len(frames) >= limit or quiet >= quiet_limit:
            full.set()

    remove = ch.add_tap(tap)
    key = ""
    wall_deadline = loop.time() + verb.max_length + WALL_SLACK
    try:
        while not ctx.hung_up and not full.is_set() and loop.time() < wall_deadline:
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
