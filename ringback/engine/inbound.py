"""Inbound calls: an INVITE for one of an account's incoming numbers becomes a call (Flags 1)
that requests the number's Url, exactly as a REST call's first request (without DialStatus)."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from ringback import numbers
from ringback.engine import outcome as oc
from ringback.engine.leg import CallLeg
from ringback.sids import new_sid
from ringback.sip import sdp
from ringback.store import queue
from ringback.store.models import FLAG_INBOUND, Account, Call, IncomingNumber, utcnow

if TYPE_CHECKING:
    from ringback.engine.context import EngineContext
    from ringback.sip.ua import IncomingCall

log = logging.getLogger("ringback.inbound")


@dataclass(frozen=True)
class InboundSpec:
    sid: str
    account_sid: str
    auth_token: str
    caller: str
    called: str
    flags: int


def _canonical_or_raw(user: str) -> str:
    try:
        return numbers.from_e164(user)
    except numbers.NumberError:
        return user[:20]


async def handle_invite(ctx: EngineContext, inc: IncomingCall) -> None:
    try:
        called = numbers.from_e164(inc.request_uri_user)
    except numbers.NumberError:
        await inc.reject(404)
        return

    def lookup(s: Any) -> tuple[IncomingNumber, str] | None:
        row = s.scalar(select(IncomingNumber).where(IncomingNumber.phone_number == called))
        if row is None:
            return None
        acct = s.get(Account, row.account_sid)
        return (row, acct.auth_token) if acct is not None else None

    found = await ctx.db(lookup, readonly=True)
    if found is None or not found[0].url:
        await inc.reject(404)
        return
    number, token = found
    caller = _canonical_or_raw(inc.from_user)

    media = await ctx.media.open_session()
    try:
        try:
            answer, params = sdp.make_answer(inc.remote_sdp or b"", ctx.sip_host, media.local_port)
        except sdp.SdpError:
            await inc.reject(488)
            return
        sid = new_sid("CA")
        now = utcnow()
        await ctx.db(lambda s: s.add(Call(
            sid=sid, account_sid=number.account_sid, called=called, caller=caller, phone_number_sid=number.sid,
            status=oc.IN_PROGRESS, state="running", flags=FLAG_INBOUND, url=number.url,
            method=number.method or "POST", timeout=0, start_time=now, claimed_by=ctx.node_id, claimed_at=now,
            date_created=now, date_updated=now,
        )))
        media.set_remote(params.remote_host, params.remote_port, params.payload_type, params.telephone_event_pt)
        await inc.answer(answer)
    except BaseException:
        await media.close()
        raise

    leg = CallLeg(ctx, inc, media, label=sid)
    spec = InboundSpec(sid, number.account_sid, token, caller, called, FLAG_INBOUND)
    status = oc.APP_ERROR
    try:
        from ringback.engine.session import run_app

        ok = await run_app(
            ctx, spec, leg, number.url or "", number.method or "POST",
            fallback_url=number.voice_fallback_url, fallback_method=number.voice_fallback_method or "POST",
        )
        status = oc.COMPLETE if ok else oc.APP_ERROR
    except Exception:
        log.exception("inbound call %s failed", sid)
    finally:
        with contextlib.suppress(Exception):
            await leg.close()
        await ctx.db(lambda s: queue.finalize(s, sid, status=status, answered_at=now))
