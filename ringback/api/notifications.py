"""/Notifications: list (filters Log, MessageDate), instance with request detail, DELETE."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ..store.models import Notification
from .context import Ctx, Reply, page_of
from .errors import not_found
from .params import day_range
from .render import Node, rfc2822, text


def notification_node(n: Notification, detail: bool) -> Node:
    fields = [
        Node("Sid", n.sid),
        Node("DateCreated", rfc2822(n.date_created)),
        Node("DateUpdated", rfc2822(n.date_updated)),
        Node("AccountSid", n.account_sid),
        Node("CallSid", n.call_sid),
        Node("Log", str(n.log)),
        Node("ErrorCode", text(n.error_code)),
        Node("MoreInfo", text(n.more_info)),
        Node("MessageText", text(n.message_text)),
        Node("MessageDate", rfc2822(n.message_date)),
        Node("RequestURL", text(n.request_url)),
        Node("RequestMethod", text(n.request_method)),
    ]
    if detail:
        fields += [
            Node("RequestVariables", text(n.request_variables)),
            Node("ResponseHeaders", text(n.response_headers)),
            Node("ResponseBody", text(n.response_body)),
        ]
    return Node("Notification", fields)


def list_notifications(ctx: Ctx) -> Reply:
    where: list[Any] = [Notification.account_sid == ctx.account_sid]
    empty = False
    for c in ctx.query:
        if c.name == "Log" and c.op == "=":
            if c.value in ("0", "1"):
                where.append(Notification.log == int(c.value))
            else:
                empty = True
        elif c.name == "MessageDate":
            try:
                lo, hi = day_range(c)
            except ValueError:
                empty = True
                continue
            if lo is not None:
                where.append(Notification.message_date >= lo)
            if hi is not None:
                where.append(Notification.message_date < hi)
    stmt = select(Notification).where(*where).order_by(Notification.message_date.desc(), Notification.sid.desc())
    with ctx.store.session(readonly=True) as s:
        return Reply(
            doc=page_of(s, ctx, "Notifications", stmt, lambda n: notification_node(n, False), total=0 if empty else None)
        )


def _own(s: Any, ctx: Ctx, sid: str) -> Notification:
    n = s.get(Notification, sid)
    if n is None or n.account_sid != ctx.account_sid:
        raise not_found()
    return n


def get_notification(ctx: Ctx, sid: str) -> Reply:
    with ctx.store.session(readonly=True) as s:
        return Reply(doc=notification_node(_own(s, ctx, sid), True))


def delete_notification(ctx: Ctx, sid: str) -> Reply:
    with ctx.store.session() as s:
        s.delete(_own(s, ctx, sid))
    return Reply(204)
