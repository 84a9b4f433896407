"""<Play>: fetch (cached by HTTP headers), decode to 8 kHz, play, loop."""

from __future__ import annotations

from ringback.twiml import media
from ringback.twiml.context import Context, End, Step
from ringback.twiml.parse import Play

INVALID_CONTENT_TYPE = 13420
GATHER_INVALID_CONTENT_TYPE = 13325


async def load(verb: Play, ctx: Context, *, in_gather: bool = False) -> media.Pcm | None:
    """The decoded audio, or None after reporting why it cannot be played."""
    url = ctx.resolve(verb.url)
    res = await ctx.app.fetch(url, "GET", {})
    code = GATHER_INVALID_CONTENT_TYPE if in_gather else INVALID_CONTENT_TYPE
    if res.error is not None and res.error != 12300:
        await ctx.error(res.error, f"<Play> could not fetch {url}: {res.error_message}")
        return None
    if res.kind != "audio":
        await ctx.error(code, f"<Play> {url} has content type {res.content_type or '(none)'!r}, not audio")
        return None
    try:
        return media.decode(res.body, res.content_type)
    except media.DecodeError as e:
        await ctx.error(code, f"<Play> cannot decode {url} as {res.content_type}: {e}")
        return None


async def execute(verb: Play, ctx: Context) -> Step:
    pcm = await load(verb, ctx)
    if pcm is None:
        return End("hung_up") if ctx.hung_up else None
    n = 0
    while verb.loop == 0 or n < verb.loop:
        if ctx.hung_up:
            return End("hung_up")
        await ctx.play(pcm)
        n += 1
        if pcm.size == 0 and verb.loop == 0:
            break
    return End("hung_up") if ctx.hung_up else None
