"""/IncomingPhoneNumbers: list, get, update, release; /Local and /TollFree provisioning."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import numbers
from ..sids import PHONE_NUMBER, new_sid
from ..store.accounts import SANDBOX_FIRST, SANDBOX_LAST
from ..store.models import IncomingNumber, utcnow
from .calls import note_unknown, unknown_params
from .context import Ctx, Reply, page_of
from .errors import bad, not_found
from .params import friendly_name, method, valid_url
from .render import Node, rfc2822, text

UPDATE_PARAMS = (
    "FriendlyName", "Url", "Method", "VoiceFallbackUrl", "VoiceFallbackMethod", "VoiceCallerIdLookup",
    "SmsUrl", "SmsMethod", "SmsFallbackUrl", "SmsFallbackMethod",
)
PROVISION_PARAMS = ("AreaCode", "Url", "Method", "FriendlyName")
TOLL_FREE_NPA = ("800", "833", "844", "855", "866", "877", "888")


def number_node(n: IncomingNumber) -> Node:
    return Node(
        "IncomingPhoneNumber",
        [
            Node("Sid", n.sid),
            Node("DateCreated", rfc2822(n.date_created)),
            Node("DateUpdated", rfc2822(n.date_updated)),
            Node("FriendlyName", text(n.friendly_name)),
            Node("AccountSid", n.account_sid),
            Node("PhoneNumber", n.phone_number),
            Node("VoiceCallerIdLookup", text(n.voice_caller_id_lookup)),
            Node("Url", text(n.url)),
            Node("Method", n.method),
            Node("VoiceFallbackUrl", text(n.voice_fallback_url)),
            Node("VoiceFallbackMethod", n.voice_fallback_method),
            Node("SmsUrl", text(n.sms_url)),
            Node("SmsMethod", n.sms_method),
            Node("SmsFallbackUrl", text(n.sms_fallback_url)),
            Node("SmsFallbackMethod", n.sms_fallback_method),
        ],
    )


def _is_toll_free(number: str) -> bool:
    return numbers.is_nanp(number) and number[:3] in TOLL_FREE_NPA


def list_numbers(ctx: Ctx, kind: str | None = None) -> Reply:
    where: list[Any] = [IncomingNumber.account_sid == ctx.account_sid]
    for c in ctx.query:
        if c.name == "PhoneNumber" and c.op == "=":
            where.append(IncomingNumber.phone_number == (numbers.try_normalize(c.value) or c.value))
        elif c.name == "FriendlyName" and c.op == "=":
            where.append(IncomingNumber.friendly_name == c.value)
    stmt = select(IncomingNumber).where(*where).order_by(IncomingNumber.date_created.desc(), IncomingNumber.sid.desc())
    with ctx.store.session(readonly=True) as s:
        if kind is not None:
            rows = [r for r in s.scalars(stmt) if _is_toll_free(r.phone_number) == (kind == "TollFree")]
            attrs = {"page": "0", "numpages": "1" if rows else "0", "pagesize": str(max(len(rows), 50)),
                     "total": str(len(rows)), "start": "0", "end": str(len(rows) - 1)}
            return Reply(doc=Node("IncomingPhoneNumbers", [number_node(r) for r in rows], attrs, is_list=True))
        return Reply(doc=page_of(s, ctx, "IncomingPhoneNumbers", stmt, number_node))


def _own(s: Any, ctx: Ctx, sid: str) -> IncomingNumber:
    n = s.get(IncomingNumber, sid)
    if n is None or n.account_sid != ctx.account_sid:
        raise not_found()
    return n


def get_number(ctx: Ctx, sid: str) -> Reply:
    with ctx.store.session(readonly=True) as s:
        return Reply(doc=number_node(_own(s, ctx, sid)))


def _url(value: str | None, code: int) -> str | None:
    if value is None:
        return None
    if value == "":
        return ""
    if not valid_url(value):
        raise bad(code)
    return value


def update_number(ctx: Ctx, sid: str) -> Reply:
    f = ctx.form
    url = _url(f.get("Url"), 21402)
    fallback = _url(f.get("VoiceFallbackUrl"), 21402)
    sms_url = _url(f.get("SmsUrl"), 21402)
    sms_fallback = _url(f.get("SmsFallbackUrl"), 21402)
    name = friendly_name(f["FriendlyName"]) if "FriendlyName" in f else None
    methods = {k: method(f.get(k), 21403) for k in ("Method", "VoiceFallbackMethod", "SmsMethod", "SmsFallbackMethod") if k in f}
    lookup = f.get("VoiceCallerIdLookup")
    if lookup is not None and lookup.lower() not in ("true", "false"):
        raise bad(21401, "Invalid VoiceCallerIdLookup")
    with ctx.store.session() as s:
        n = _own(s, ctx, sid)
        if url is not None:
            n.url = url or None
        if fallback:
            if not n.url:
                raise bad(21405)
            n.voice_fallback_url = fallback
        elif fallback == "":
            n.voice_fallback_url = None
        if sms_url is not None:
            n.sms_url = sms_url or None
        if sms_fallback is not None:
            n.sms_fallback_url = sms_fallback or None
        if name is not None:
            n.friendly_name = name
        if "Method" in methods:
            n.method = methods["Method"]
        if "VoiceFallbackMethod" in methods:
            n.voice_fallback_method = methods["VoiceFallbackMethod"]
        if "SmsMethod" in methods:
            n.sms_method = methods["SmsMethod"]
        if "SmsFallbackMethod" in methods:
            n.sms_fallback_method = methods["SmsFallbackMethod"]
        if lookup is not None:
            n.voice_caller_id_lookup = lookup.lower() == "true"
        n.date_updated = utcnow()
        note_unknown(s, ctx, None, unknown_params(ctx, UPDATE_PARAMS))
        return Reply(doc=number_node(n))


def release_number(ctx: Ctx, sid: str) -> Reply:
    with ctx.store.session() as s:
        s.delete(_own(s, ctx, sid))
    return Reply(204)


def _candidates(ctx: Ctx, kind: str, area: str | None) -> list[str]:
    if ctx.settings.sandbox_trunk:
        if kind == "TollFree" or (area is not None and area != "500"):
            return []
        return [str(n) for n in range(SANDBOX_FIRST, SANDBOX_LAST + 1)]
    pool = [numbers.try_normalize(p) for p in ctx.settings.number_pool]
    out = [p for p in pool if p and _is_toll_free(p) == (kind == "TollFree")]
    if area is not None:
        out = [p for p in out if p[:3] == area]
    return out


def provision(ctx: Ctx, kind: str) -> Reply:
    f = ctx.form
    area = f.get("AreaCode") or None
    if area is not None and not (len(area) == 3 and area.isdigit() and area[0] in "23456789"):
        raise bad(21451)
    url = _url(f.get("Url"), 21402) or None
    how = method(f.get("Method"), 21403)
    name = friendly_name(f["FriendlyName"]) if "FriendlyName" in f else None
    candidates = _candidates(ctx, kind, area)
    for _attempt in range(3):  # another request may take the same free number first
        try:
            with ctx.store.session() as s:
                taken = set(s.scalars(select(IncomingNumber.phone_number).where(
                    IncomingNumber.phone_number.in_(candidates)))) if len(candidates) <= 2000 else set()
                free = next((c for c in candidates if c not in taken), None)
                if free is None:
                    raise bad(21452)
                now = utcnow()
                n = IncomingNumber(sid=new_sid(PHONE_NUMBER), account_sid=ctx.account_sid, phone_number=free,
                                   friendly_name=name or numbers.friendly(free), url=url, method=how,
                                   date_created=now, date_updated=now)
                s.add(n)
                s.flush()
                note_unknown(s, ctx, None, unknown_params(ctx, PROVISION_PARAMS))
            location = f"{ctx.settings.public_url}{ctx.base}/IncomingPhoneNumbers/{n.sid}"
            return Reply(201, number_node(n), headers={"Location": location})
        except IntegrityError:
            continue
    raise bad(21452)
