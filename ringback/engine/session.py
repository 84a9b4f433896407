"""Run the app's TwiML on an answered leg (outbound or inbound), with live redirects."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ringback.engine.channel import LegChannel
from ringback.engine.leg import CallLeg
from ringback.engine.params import call_params
from ringback.store import queue

if TYPE_CHECKING:
    from ringback.engine.context import EngineContext

log = logging.getLogger("ringback.session")


class LiveCall:
    """What the engine knows of a call running TwiML on this node (for POST /Calls/{CA})."""

    def __init__(self, interpreter: Any) -> None:
        self.interpreter = interpreter


async def apply_redirect(ctx: EngineContext, call_sid: str) -> bool:
    """Act on a pending live redirect written by the API. False if the call is not live here."""
    live = ctx.live.get(call_sid)
    if live is None:
        return False
    pending = await ctx.db(lambda s: queue.take_redirect(s, call_sid))
    if pending is not None:
        live.interpreter.redirect(*pending)
    return True


async def run_app(
    ctx: EngineContext,
    spec: Any,
    leg: CallLeg,
    url: str,
    method: str,
    *,
    extra_params: dict[str, str] | None = None,
    fallback_url: str | None = None,
    fallback_method: str = "POST",
) -> bool:
    """Fetch and execute the app's TwiML until the call ends. True unless the app failed (Status 4)."""
    from ringback.twiml.interpreter import Interpreter

    params = call_params(spec.sid, spec.account_sid, spec.caller, spec.called, "in-progress")
    chan = LegChannel(
        ctx, leg, call_sid=spec.sid, account_sid=spec.account_sid, auth_token=spec.auth_token, params=params,
        caller=spec.caller, called=spec.called, flags=spec.flags,
    )
    client = ctx.app_client(spec.account_sid, spec.auth_token)
    # A redirect POSTed while the call was still ringing replaces the first document.
    pending = await ctx.db(lambda s: queue.take_redirect(s, spec.sid))
    if pending is not None:
        url, method = pending
    interp = Interpreter(
        chan, client, url, method, extra_params=extra_params, fallback_url=fallback_url,
        fallback_method=fallback_method,
    )
    ctx.live[spec.sid] = LiveCall(interp)
    try:
        outcome = await interp.run()
    finally:
        ctx.live.pop(spec.sid, None)
        await client.aclose()
        await leg.hangup()
    return not outcome.app_error
