"""<Hangup/>: end the call."""

from __future__ import annotations

from ringback.twiml.context import Context, End, Step
from ringback.twiml.parse import Hangup


async def execute(verb: Hangup, ctx: Context) -> Step:
    return End("hangup")
