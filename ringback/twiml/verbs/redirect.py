"""<Redirect>: continue with another document (no extra parameters)."""

from __future__ import annotations

from ringback.twiml.context import Context, Goto, Step
from ringback.twiml.parse import Redirect


async def execute(verb: Redirect, ctx: Context) -> Step:
    return Goto(ctx.resolve(verb.url), verb.method)
