"""The life of a REST-initiated call, from claim to final state (DESIGN.md, "The life of a call").

It always ends by writing the final state, whatever fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime

from ringback import numbers
from ringback.engine import outcome as oc
from ringback.engine.context import EngineContext
from ringback.engine.leg import CallLeg, place_call
from ringback.engine.notify import add_notification
from ringback.engine.params import call_params
from ringback.store import queue
from ringback.store.models import utcnow

log = logging.getLogger("ringback.outbound")


@dataclass(frozen=True)
class CallSpec:
    """What the engine needs of a claimed call row (a detached snapshot)."""

    sid: str
    account_sid: str
    auth_token: str
    caller: str
    called: str
    url: str
    method: str
    send_digits: str | None
    if_machine: str | None
    timeout: int
    flags: int


async def wait_or_hangup(aw: asyncio.Future[object] | asyncio.Task[object], leg: CallLeg) -> bool:
    """Await `aw` unless the leg hangs up first (then cancel it). True if it completed."""
    hang = asyncio.ensure_future(leg.hung_up.wait())
    try:
        done, _ = await asyncio.wait({aw, hang}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        hang.cancel()
    if aw in done:
        aw.result()
        return True
    aw.cancel()
    with contextlib.suppress(BaseException):
        await aw
    return False


async def report(ctx: EngineContext, spec: CallSpec, params: dict[str, str]) -> None:
    """A request whose response is ignored (busy, no-answer, fail, hangup-machine); failures are
    still Notifications, so a broken app is visible."""

    client = ctx.app_client(spec.account_sid, spec.auth_token)
    try:
        resp = await client.fetch(spec.url, spec.method, params)
    finally:
        await client.aclose()
    if resp.error is not None:
        await ctx.db(
            lambda s: add_notification(
                s, spec.account_sid, spec.sid, resp.error or 11200, resp.error_message or "HTTP retrieval failure",
                request_url=resp.request_url, request_method=resp.request_method,
                request_variables=resp.request_variables_text(), response_headers=resp.response_headers_text(),
                response_body=resp.text,
            )
        )


async def run_outbound(ctx: EngineContext, spec: CallSpec) -> None:
    final_status = oc.APP_ERROR
    dial_status: str | None = None
    sip_code: int | None = None
    answered_at: datetime | None = None
    leg: CallLeg | None = None
    try:
        await ctx.db(lambda s: queue.mark_dialing(s, spec.sid))

        res = await place_call(
            ctx,
            numbers.to_e164(spec.called),
            numbers.to_e164(spec.caller),
            timeout=float(spec.timeout),
            headers={"X-Ringback-CallSid": spec.sid},
            label=spec.sid,
        )
        sip_code = res.code
        if res.leg is None:
            out = oc.failure_outcome(res.code)
            dial_status, final_status = out.dial_status, out.rest_status
            params = call_params(spec.sid, spec.account_sid, spec.caller, spec.called, out.call_status)
            params["DialStatus"] = out.dial_status
            await report(ctx, spec, params)
            return

        leg = res.leg
        answered_at = utcnow()
        await ctx.db(lambda s: queue.set_state(s, spec.sid, "analysing" if spec.if_machine else "running"))
        final_status, dial_status = await asyncio.wait_for(
            _answered(ctx, spec, leg), timeout=max(1.0, ctx.settings.max_call_seconds)
        )
    except TimeoutError:
        log.warning("call %s reached the maximum call length", spec.sid)
        final_status = oc.COMPLETE
    except Exception as exc:
        log.exception("call %s failed", spec.sid)
        final_status = oc.APP_ERROR
        text = f"Internal failure: {exc}"
        with contextlib.suppress(Exception):
            await ctx.db(lambda s: add_notification(s, spec.account_sid, spec.sid, 12400, text))
    finally:
        if leg is not None:
            await leg.close()
        ctx.live.pop(spec.sid, None)
        ended = utcnow()
        await _finalize_with_retry(ctx, spec.sid, final_status, dial_status, sip_code, answered_at, ended)


async def _finalize_with_retry(
    ctx: EngineContext,
    sid: str,
    status: int,
    dial_status: str | None,
    sip_code: int | None,
    answered_at: datetime | None,
    ended: datetime,
) -> None:
    # The final state must land even if the database is briefly busy: retry with back-off.
    for attempt in range(8):
        try:
            await ctx.db(
                lambda s: queue.finalize(
                    s, sid, status=status, dial_status=dial_status, sip_code=sip_code,
                    answered_at=answered_at, ended_at=ended,
                )
            )
            return
        except Exception:
            log.exception("finalize %s failed (attempt %d)", sid, attempt + 1)
            await asyncio.sleep(0.2 * 2**attempt)


async def _answered(ctx: EngineContext, spec: CallSpec, leg: CallLeg) -> tuple[int, str]:
    """From 200 OK to the end of the app's flow: SendDigits, AMD, then the first request."""
    from ringback.engine.session import run_app

    if spec.send_digits:
        # Digits go first; with IfMachine too, the detector analyses what answers after them.
        await wait_or_hangup(asyncio.ensure_future(leg.media.send_digits(spec.send_digits)), leg)

    verdict: str | None = None
    if spec.if_machine and not leg.hung_up.is_set():
        from ringback.engine.amd_run import analyse

        continue_mode = spec.if_machine.lower() == "continue"
        verdict = await analyse(ctx, leg, continue_mode=continue_mode)
    dial_status = oc.answered_dial_status(spec.if_machine, verdict)

    if leg.hung_up.is_set() or dial_status == "hangup-machine":
        # The far end left during analysis/digits, or we hang up on a machine: BYE first, then
        # the request, whose response is ignored.
        await leg.hangup()
        params = call_params(spec.sid, spec.account_sid, spec.caller, spec.called, "completed")
        params["DialStatus"] = dial_status
        await report(ctx, spec, params)
        return oc.COMPLETE, dial_status

    await ctx.db(lambda s: queue.set_state(s, spec.sid, "running", dial_status=dial_status))
    ok = await run_app(ctx, spec, leg, spec.url, spec.method, extra_params={"DialStatus": dial_status})
    return (oc.COMPLETE if ok else oc.APP_ERROR), dial_status
