"""/OutgoingCallerIds: list, get, update, delete; POST starts a validation (ValidationRequest)."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import select

from .. import numbers
from ..sids import VALIDATION, new_sid
from ..store.models import CallerId, ValidationRequest, utcnow
from .calls import note_unknown, unknown_params
from .context import Ctx, Reply, page_of
from .errors import bad, not_found
from .params import friendly_name
from .render import Node, rfc2822

POST_PARAMS = ("PhoneNumber", "FriendlyName", "CallDelay")


def caller_id_node(c: CallerId) -> Node:
    return Node(
        "OutgoingCallerId",
        [
            Node("Sid", c.sid),
            Node("DateCreated", rfc2822(c.date_created)),
            Node("DateUpdated", rfc2822(c.date_updated)),
            Node("FriendlyName", c.friendly_name or None),
            Node("AccountSid", c.account_sid),
            Node("PhoneNumber", c.phone_number),
        ],
    )


def list_caller_ids(ctx: Ctx) -> Reply:
    where: list[Any] = [CallerId.account_sid == ctx.account_sid]
    for c in ctx.query:
        if c.name == "PhoneNumber" and c.op == "=":
            where.append(CallerId.phone_number == (numbers.try_normalize(c.value) or c.value))
        elif c.name == "FriendlyName" and c.op == "=":
            where.append(CallerId.friendly_name == c.value)
    stmt = select(CallerId).where(*where).order_by(CallerId.date_created.desc(), CallerId.sid.desc())
    with ctx.store.session(readonly=True) as s:
        return Reply(doc=page_of(s, ctx, "OutgoingCallerIds", stmt, caller_id_node))


def _own(s: Any, ctx: Ctx, sid: str) -> CallerId:
    c = s.get(CallerId, sid)
    if c is None or c.account_sid != ctx.account_sid:
        raise not_found()
    return c


def get_caller_id(ctx: Ctx, sid: str) -> Reply:
    with ctx.store.session(readonly=True) as s:
        return Reply(doc=caller_id_node(_own(s, ctx, sid)))


def update_caller_id(ctx: Ctx, sid: str) -> Reply:
    name = ctx.form.get("FriendlyName")
    with ctx.store.session() as s:
        c = _own(s, ctx, sid)
        if name is not None:
            c.friendly_name = friendly_name(name)
            c.date_updated = utcnow()
        note_unknown(s, ctx, None, unknown_params(ctx, ("FriendlyName",)))
        return Reply(doc=caller_id_node(c))


def delete_caller_id(ctx: Ctx, sid: str) -> Reply:
    with ctx.store.session() as s:
        s.delete(_own(s, ctx, sid))
    return Reply(204)


def start_validation(ctx: Ctx) -> Reply:
    f = ctx.form
    try:
        number = numbers.normalize(f.get("PhoneNumber", ""))
    except numbers.NumberError as exc:
        raise bad(21401) from exc
    name = friendly_name(f["FriendlyName"]) if "FriendlyName" in f else numbers.friendly(number)
    delay = 0
    raw = f.get("CallDelay")
    if raw:
        if not (raw.isdigit() and len(raw) <= 2 and int(raw) <= 60):
            raise bad(21454)
        delay = int(raw)
    with ctx.store.session() as s:
        owners = set(s.scalars(select(CallerId.account_sid).where(CallerId.phone_number == number)))
        if ctx.account_sid in owners:
            raise bad(21450)
        if owners:
            raise bad(21453)
        now = utcnow()
        v = ValidationRequest(
            sid=new_sid(VALIDATION), account_sid=ctx.account_sid, phone_number=number, friendly_name=name,
            call_delay=delay, validation_code=f"{secrets.randbelow(10**6):06d}", status="pending",
            date_created=now, date_updated=now,
        )
        s.add(v)
        note_unknown(s, ctx, None, unknown_params(ctx, POST_PARAMS))
    vsid = v.sid
    ctx.after.append(lambda hooks: hooks.on_validation_requested(vsid))
    node = Node(
        "ValidationRequest",
        [Node("AccountSid", ctx.account_sid), Node("PhoneNumber", number), Node("ValidationCode", v.validation_code)],
    )
    return Reply(201, node)
