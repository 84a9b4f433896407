"""/Calls: make, list, fetch and redirect calls; Segments and per-call sub-lists."""

from __future__ import annotations

import functools
import re
from types import SimpleNamespace
from typing import Any

from sqlalchemy import bindparam, literal, select
from sqlalchemy.orm import Session

from .. import numbers
from ..sids import CALL, new_sid
from ..store import listing
from ..store.hot import HotStatement
from ..store.listing import CallFilter
from ..store.models import (
    FLAG_API,
    LIVE_STATES,
    STATUS_QUEUED,
    Call,
    CallerId,
    IncomingNumber,
    Notification,
    Recording,
    utcnow,
)
from ..store.records import LOG_WARNING, create_notification
from .context import ApiHooks, Ctx, Reply, list_node, page_of
from .errors import bad, not_found
from .notifications import notification_node
from .params import Cond, clean, day_range, method, paging, valid_url
from .recordings import recording_node
from .render import Node, rfc2822, text

POST_PARAMS = ("Caller", "Called", "Url", "Method", "SendDigits", "IfMachine", "Timeout")
REDIRECT_PARAMS = ("CurrentUrl", "CurrentMethod")
_DIGITS = re.compile(r"^[0-9#*wW]{1,32}$")
_TIMEOUT = re.compile(r"^[0-9]{1,3}$")
_CALLS = Call.__table__


def call_node(c: Any) -> Node:
    """c: a Call, or anything with its attributes (a new call is rendered from its inserted values)."""
    # Segments share the Sid of the call they belong to; their own id is CallSegmentSid.
    return Node(
        "Call",
        [
            Node("Sid", c.parent_sid or c.sid),
            Node("DateCreated", rfc2822(c.date_created)),
            Node("DateUpdated", rfc2822(c.date_updated)),
            Node("CallSegmentSid", c.call_segment_sid),
            Node("AccountSid", c.account_sid),
            Node("Called", c.called),
            Node("Caller", c.caller),
            Node("PhoneNumberSid", c.phone_number_sid),
            Node("Status", str(c.status)),
            Node("StartTime", rfc2822(c.start_time)),
            Node("EndTime", rfc2822(c.end_time)),
            Node("Duration", text(c.duration)),
            Node("Price", text(c.price)),
            Node("Flags", str(c.flags)),
            Node("Annotation", text(c.annotation)),
        ],
    )


def unknown_params(ctx: Ctx, known: tuple[str, ...]) -> dict[str, str]:
    return {k: v for k, v in ctx.form.items() if k not in known}


def note_unknown(session: Any, ctx: Ctx, call_sid: str | None, unknown: dict[str, str]) -> None:
    """One warning Notification naming every unknown parameter, as Twilio did."""
    if not unknown:
        return
    listed = "&".join(f"{k}={v}" for k, v in unknown.items())
    create_notification(
        session,
        ctx.account_sid,
        call_sid,
        LOG_WARNING,
        20001,
        clean(f"Unknown parameter received by the REST API: {listed}")[:4000],
        request_url=clean(ctx.path),
        request_method=ctx.method,
        request_variables=clean("&".join(f"{k}={v}" for k, v in ctx.form.items()))[:16000],
    )


@functools.lru_cache(maxsize=4096)
def _normalize(value: str) -> str:
    # phonenumbers parsing is the costliest CPU step of a POST (~0.1 ms a number); apps dial the
    # same few Caller numbers over and over. Failures raise and so are never cached.
    return numbers.normalize(value)


def _number(value: str, code_invalid: int) -> str:
    try:
        return _normalize(value)
    except numbers.NumberError as exc:
        if exc.forbidden and code_invalid == 21211:
            raise bad(21202) from exc
        raise bad(code_invalid) from exc


# The POST /Calls statements, built once: constructing and cache-keying a statement per request
# cost SQLAlchemy more than SQLite spends executing it.
_CALLER_SQL = (
    select(IncomingNumber.sid, literal(0).label("pref"))
    .where(IncomingNumber.account_sid == bindparam("a"), IncomingNumber.phone_number == bindparam("n"))
    .union_all(
        select(CallerId.sid, literal(1).label("pref"))
        .where(CallerId.account_sid == bindparam("a"), CallerId.phone_number == bindparam("n"))
    )
    .order_by("pref")  # an incoming number wins over a caller ID of the same number
    .limit(1)
)
_HOT_CALLER = HotStatement(_CALLER_SQL)
# Every column a new call sets, by name; the columns left out default to NULL (models.Call).
_CALL_COLUMNS = ("sid", "account_sid", "parent_sid", "call_segment_sid", "called", "caller", "phone_number_sid",
                 "status", "state", "flags", "url", "method", "send_digits", "if_machine", "timeout",
                 "date_created", "date_updated")
_HOT_INSERT_CALL = HotStatement(
    _CALLS.insert().values({c: bindparam(c, type_=_CALLS.c[c].type) for c in _CALL_COLUMNS})
)


def _caller_sid(s: Session, account_sid: str, caller: str) -> str | None:
    """The PhoneNumberSid that lets this account call from caller: an incoming number or a caller ID."""
    # On the raw cursor (store/hot.py): SQLAlchemy's per-execution work costs more than the read.
    row = _HOT_CALLER.execute(s, {"a": account_sid, "n": caller}).fetchone()
    return row[0] if row is not None else None


async def create(ctx: Ctx) -> Reply:
    """Validation runs on the event loop (pure CPU, microseconds); the row goes through the store's
    group-commit writer, and the 201 is sent only once that transaction has committed."""
    f = ctx.form
    raw_called, raw_caller, url = f.get("Called", ""), f.get("Caller", ""), f.get("Url", "")
    if not raw_called.strip():
        raise bad(21201)
    if not raw_caller.strip():
        raise bad(21213)
    if not url:
        raise bad(21205, "Url is required")
    if not valid_url(url):
        raise bad(21205)
    called = _number(raw_called, 21211)
    caller = _number(raw_caller, 21212)
    how = method(f.get("Method"), 21209)
    digits = f.get("SendDigits") or None
    if digits is not None:
        if not _DIGITS.match(digits):
            raise bad(21206)
        digits = digits.lower()
    if_machine = f.get("IfMachine") or None
    if if_machine is not None:
        low = if_machine.lower()
        if low not in ("continue", "hangup"):
            raise bad(21207)
        if_machine = low.capitalize()
    timeout = 60
    raw_timeout = f.get("Timeout")
    if raw_timeout:
        if not _TIMEOUT.match(raw_timeout) or not 1 <= int(raw_timeout) <= 999:
            raise bad(21208)
        timeout = int(raw_timeout)
    unknown = unknown_params(ctx, POST_PARAMS)
    account_sid = ctx.account_sid

    def job(s: Session) -> dict[str, Any]:
        # Runs in the writer thread inside its own savepoint: raising here leaves no row behind.
        pn_sid = _caller_sid(s, account_sid, caller)
        if pn_sid is None:
            raise bad(21210)
        now = utcnow()
        values: dict[str, Any] = dict(
            sid=new_sid(CALL), account_sid=account_sid, parent_sid=None, call_segment_sid=None,
            called=called, caller=caller, phone_number_sid=pn_sid, status=STATUS_QUEUED, state="queued",
            flags=FLAG_API, url=url, method=how, send_digits=digits, if_machine=if_machine, timeout=timeout,
            date_created=now, date_updated=now,
        )
        # On the raw cursor: the ORM's unit of work, or even a Core execute, costs more than the insert.
        _HOT_INSERT_CALL.execute(s, values)
        note_unknown(s, ctx, values["sid"], unknown)
        return values

    values = await ctx.store.write(job)
    # Rendered from the inserted values: building an ORM Call just to read them back cost about
    # a tenth of a POST's CPU (attribute instrumentation on every field).
    call = SimpleNamespace(**_UNSET_ON_CREATE, **values)
    sid = values["sid"]
    ctx.after.append(lambda hooks: hooks.on_call_created(sid))
    location = f"{ctx.settings.public_url}{ctx.base}/Calls/{sid}"
    return Reply(201, call_node(call), headers={"Location": location})


# What a call just created has not got yet (the columns the insert leaves to their defaults).
_UNSET_ON_CREATE = {"start_time": None, "end_time": None, "duration": None, "price": None, "annotation": None}


def _filters(ctx: Ctx) -> CallFilter | None:
    """The list's filters; None when nothing can match (a malformed number, status or date)."""
    f = CallFilter(ctx.account_sid)
    for c in ctx.query:
        if c.name in ("Called", "Caller") and c.op == "=":
            n = numbers.try_normalize(c.value)
            dim = c.name.lower()
            if n is None or f.eq.get(dim, n) != n:
                return None
            f.eq[dim] = n
        elif c.name == "Status" and c.op == "=":
            if not (c.value.isdigit() and len(c.value) == 1 and int(c.value) <= 5):
                return None
            if f.eq.get("status", c.value) != c.value:
                return None
            f.eq["status"] = c.value
        elif c.name in ("StartTime", "EndTime"):
            try:
                lo, hi = day_range(c)
            except ValueError:
                return None
            if c.name == "StartTime":
                f.started = True
                if lo is not None:
                    f.lo = lo if f.lo is None else max(f.lo, lo)
                if hi is not None:
                    f.hi = hi if f.hi is None else min(f.hi, hi)
            else:
                if lo is not None:
                    f.extra.append(Call.end_time >= lo)
                if hi is not None:
                    f.extra.append(Call.end_time < hi)
    return f


def list_calls(ctx: Ctx) -> Reply:
    f = _filters(ctx)
    page, size = paging(ctx.query)
    with ctx.store.session(readonly=True) as s:
        if ctx.store.dialect == "postgresql":
            # The total and the page must come from one snapshot: a page read from the far end of
            # the list is placed by the total.
            s.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        f = None if f is None else listing.narrowed(s, f)
        n = 0 if f is None else listing.total(s, f)
        rows = [] if f is None else listing.page_rows(s, f, page * size, size, n)
        return Reply(doc=list_node("Calls", rows, call_node, page, size, n))


def _own_call(s: Any, ctx: Ctx, sid: str) -> Call:
    call = s.get(Call, sid)
    if call is None or call.account_sid != ctx.account_sid or call.parent_sid is not None:
        raise not_found()
    return call


def get_call(ctx: Ctx, sid: str) -> Reply:
    with ctx.store.session(readonly=True) as s:
        return Reply(doc=call_node(_own_call(s, ctx, sid)))


def redirect(ctx: Ctx, sid: str) -> Reply:
    url = ctx.form.get("CurrentUrl", "")
    with ctx.store.session() as s:
        call = _own_call(s, ctx, sid)
        if not url or not valid_url(url):
            raise bad(21205, "Invalid CurrentUrl")
        how = method(ctx.form.get("CurrentMethod"), 21209)
        if call.state not in LIVE_STATES:
            raise bad(21220, "Call is not in progress. Cannot redirect.")
        call.redirect_url = url
        call.redirect_method = how
        call.date_updated = utcnow()
        note_unknown(s, ctx, call.sid, unknown_params(ctx, REDIRECT_PARAMS))
        node = call_node(call)
    ctx.after.append(lambda hooks: hooks.on_call_redirect(sid))
    return Reply(doc=node)


def segments(ctx: Ctx, sid: str) -> Reply:
    with ctx.store.session(readonly=True) as s:
        _own_call(s, ctx, sid)
        stmt = select(Call).where(Call.parent_sid == sid).order_by(Call.date_updated.desc(), Call.sid.desc())
        return Reply(doc=page_of(s, ctx, "Calls", stmt, call_node))


def segment(ctx: Ctx, sid: str, seg: str) -> Reply:
    with ctx.store.session(readonly=True) as s:
        _own_call(s, ctx, sid)
        row = s.scalar(
            select(Call).where(Call.parent_sid == sid, (Call.call_segment_sid == seg) | (Call.sid == seg))
        )
        if row is None:
            raise not_found()
        return Reply(doc=call_node(row))


def call_recordings(ctx: Ctx, sid: str) -> Reply:
    with ctx.store.session(readonly=True) as s:
        _own_call(s, ctx, sid)
        stmt = (
            select(Recording)
            .where(Recording.account_sid == ctx.account_sid, Recording.call_sid == sid)
            .order_by(Recording.date_created.desc(), Recording.sid.desc())
        )
        return Reply(doc=page_of(s, ctx, "Recordings", stmt, recording_node))


def call_notifications(ctx: Ctx, sid: str) -> Reply:
    with ctx.store.session(readonly=True) as s:
        _own_call(s, ctx, sid)
        stmt = (
            select(Notification)
            .where(Notification.account_sid == ctx.account_sid, Notification.call_sid == sid)
            .order_by(Notification.message_date.desc(), Notification.sid.desc())
        )
        return Reply(doc=page_of(s, ctx, "Notifications", stmt, lambda n: notification_node(n, False)))


__all__ = ["ApiHooks", "Cond", "create", "list_calls", "get_call", "redirect", "segments", "segment"]
