"""/Accounts and /Accounts/{AC}: an account sees only itself."""

from __future__ import annotations

from ..store.models import Account, utcnow
from .calls import note_unknown, unknown_params
from .context import Ctx, Reply
from .errors import method_not_allowed, not_found
from .params import friendly_name
from .render import Node, rfc2822

STATUS_TEXT = {1: "Inactive", 2: "Active", 4: "Suspended", 16: "Suspended", 32: "Suspended"}


def account_node(a: Account) -> Node:
    return Node(
        "Account",
        [
            Node("Sid", a.sid),
            Node("FriendlyName", a.friendly_name),
            Node("Status", str(a.status)),
            Node("StatusText", STATUS_TEXT.get(a.status, "")),
            Node("DateCreated", rfc2822(a.date_created)),
            Node("DateUpdated", rfc2822(a.date_updated)),
            Node("AuthToken", a.auth_token),
        ],
    )


def list_accounts(ctx: Ctx) -> Reply:
    assert ctx.account is not None
    attrs = {"page": "0", "numpages": "1", "pagesize": "50", "total": "1", "start": "0", "end": "0"}
    return Reply(doc=Node("Accounts", [account_node(ctx.account)], attrs, is_list=True))


def get_account(ctx: Ctx) -> Reply:
    assert ctx.account is not None
    return Reply(doc=account_node(ctx.account))


def update_account(ctx: Ctx) -> Reply:
    name = ctx.form.get("FriendlyName")
    with ctx.store.session() as s:
        a = s.get(Account, ctx.account_sid)
        if a is None:
            raise not_found()
        if name is not None:
            a.friendly_name = friendly_name(name)
            a.date_updated = utcnow()
        note_unknown(s, ctx, None, unknown_params(ctx, ("FriendlyName",)))
        return Reply(doc=account_node(a))


def delete_account(ctx: Ctx) -> Reply:
    raise method_not_allowed("You can't delete your account")
