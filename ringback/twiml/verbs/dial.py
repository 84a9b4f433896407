"""<Dial>: Numbers rung at once and bridged, or a Conference; then the action."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ringback.twiml import media
from ringback.twiml.channel import ConferenceOptions, DialTarget
from ringback.twiml.context import Context, End, Fatal, Goto, Step
from ringback.twiml.parse import Conference, Dial

DIAL_FROM_SEGMENT = 13201
INVALID_CALLER_ID = 13214


def _wait_task(conf: Conference, ctx: Context) -> Callable[[], Awaitable[None]]:
    """What a waiting participant hears: waitUrl (TwiML or audio), silence, or hold music."""

    async def wait() -> None:
        if conf.wait_url == "":
            await ctx.channel.hung_up.wait()
            return
        if conf.wait_url is None:
            pcm = media.hold_music()
            while not ctx.hung_up:
                await ctx.channel.play(pcm)
            return
        from ringback.twiml.interpreter import run_wait_url

        await run_wait_url(ctx.channel, ctx.app, ctx.resolve(conf.wait_url), conf.wait_method)

    return wait


async def execute(verb: Dial, ctx: Context) -> Step:
    ch = ctx.channel
    if ch.is_segment:
        return Fatal(DIAL_FROM_SEGMENT, "cannot Dial out from a Dial call segment")
    if verb.conference is not None:
        conf = verb.conference
        result = await ch.conference(
            ConferenceOptions(
                name=conf.name,
                muted=conf.muted,
                beep=conf.beep,
                start_on_enter=conf.start_on_enter,
                end_on_exit=conf.end_on_exit,
                time_limit=float(verb.time_limit),
                hangup_on_star=verb.hangup_on_star,
                wait=_wait_task(conf, ctx),
            )
        )
        status = "answered" if result.status == "completed" else "failed"
    else:
        if not verb.numbers:
            return None
        caller_id = ch.params.get("Caller", "")
        if verb.caller_id:
            if await ch.check_caller_id(verb.caller_id):
                caller_id = verb.caller_id
            else:
                await ctx.notify(INVALID_CALLER_ID, f"<Dial> callerId {verb.caller_id} is not allowed: "
                                 "using the caller's ID")
        targets = [
            DialTarget(n.number, n.send_digits, ctx.resolve(n.url) if n.url else None, n.method)
            for n in verb.numbers
        ]
        result_d = await ch.dial(
            targets,
            caller_id=caller_id,
            timeout=float(verb.timeout),
            time_limit=float(verb.time_limit),
            hangup_on_star=verb.hangup_on_star,
        )
        status = result_d.status
    hung_up = ctx.hung_up
    if verb.action:
        return Goto(ctx.resolve(verb.action), verb.method, {"DialStatus": status}, after_hangup=hung_up)
    return End("hung_up") if hung_up else None

