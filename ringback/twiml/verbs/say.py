"""<Say>: speak text with the offline TTS, looped (loop=0: until hangup)."""

from __future__ import annotations

from ringback.twiml import media
from ringback.twiml.context import Context, End, Step
from ringback.twiml.parse import Say


async def render(verb: Say) -> media.Pcm:
    return await media.speak(verb.text, verb.voice, verb.language)


async def execute(verb: Say, ctx: Context) -> Step:
    pcm = await render(verb)
    n = 0
    while verb.loop == 0 or n < verb.loop:
        if ctx.hung_up:
            return End("hung_up")
        await ctx.play(pcm)
        n += 1
        if pcm.size == 0 and verb.loop == 0:
            break  # nothing to repeat: do not spin
    return End("hung_up") if ctx.hung_up else None
