"""<Pause>: silence for `length` seconds."""

from __future__ import annotations

from ringback.twiml.context import Context, End, Step
from ringback.twiml.parse import Pause


async def execute(verb: Pause, ctx: Context) -> Step:
    return None if await ctx.sleep(verb.length) else End("hung_up")
