"""<Gather>: collect DTMF while nested Say/Play/Pause run; the first key cuts them."""

from __future__ import annotations

from ringback.twiml import media
from ringback.twiml.context import Context, End, Goto, Step
from ringback.twiml.parse import Gather, Pause, Play, Say
from ringback.twiml.verbs import play as play_verb
from ringback.twiml.verbs import say as say_verb


async def _prompt(verb: Gather, ctx: Context) -> str | None:
    """Run the nested verbs; return the first key pressed, if any."""
    ch = ctx.channel
    for child in verb.children:
        if isinstance(child, Pause):
            key = await ch.next_digit(child.length)
            if key is not None or ctx.hung_up:
                return key
            continue
        pcm: media.Pcm | None
        if isinstance(child, Say):
            pcm = await say_verb.render(child)
        else:
            assert isinstance(child, Play)
            pcm = await play_verb.load(child, ctx, in_gather=True)
        if pcm is None:
            continue
        n = 0
        while child.loop == 0 or n < child.loop:
            if ctx.hung_up:
                return None
            key = await ctx.play(pcm, interruptible=True)
            if key is not None:
                return key
            n += 1
            if pcm.size == 0:
                break
    return None


async def execute(verb: Gather, ctx: Context) -> Step:
    ch = ctx.channel
    digits = ""
    key = await _prompt(verb, ctx)
    while not ctx.hung_up:
        if key is not None:
            if verb.finish_on_key and key == verb.finish_on_key:
                break
            digits += key
            if verb.num_digits is not None and len(digits) >= verb.num_digits:
                break
        key = await ch.next_digit(verb.timeout)
        if key is None:
            break  # timeout between digits (or hangup)
    if ctx.hung_up:
        return End("hung_up")
    if not digits:
        # No input (a lone finishOnKey counts as none, as in 2010): fall through.
        return None
    return Goto(ctx.resolve(verb.action), verb.method, {"Digits": digits})
