"""What a resource handler gets (Ctx) and gives back (Reply), plus list paging."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from ..store.db import Store
from ..store.models import Account
from .params import Cond, paging
from .render import Node


class ApiHooks:
    """Notifications to the engine after a change is committed. Called on the event loop; must not block."""

    def on_call_created(self, call_sid: str) -> None:
        pass

    def on_call_redirect(self, call_sid: str) -> None:
        pass

    def on_participant_update(self, conference_sid: str, call_sid: str, action: str) -> None:
        """action is 'muted', 'unmuted' or 'kicked'."""

    def on_validation_requested(self, validation_sid: str) -> None:
        pass


@dataclass
class Settings:
    public_url: str
    sandbox_trunk: bool = True
    recordings_dir: str = "recordings"
    # Numbers an operator with a real trunk hands out through /IncomingPhoneNumbers/Local|TollFree.
    number_pool: list[str] = field(default_factory=list)


@dataclass
class Ctx:
    store: Store
    settings: Settings
    account: Account | None
    account_sid: str
    method: str
    fmt: str
    query: list[Cond]
    form: dict[str, str]
    path: str
    after: list[Callable[[ApiHooks], None]] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"/2008-08-01/Accounts/{self.account_sid}"


@dataclass
class Reply:
    status: int = 200
    doc: Node | None = None
    body: bytes | None = None
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def page_of(
    session: Session,
    ctx: Ctx,
    plural: str,
    stmt: Select[Any],
    shape: Callable[[Any], Node],
    *,
    total: int | None = None,
    key: Any = None,
    keys_stmt: Select[Any] | None = None,
) -> Node:
    """One page of stmt as a list Node with page/numpages/pagesize/total/start/end.

    key (the primary key column) asks for a deferred join: the page's keys are found first by a
    query that an index can answer alone (filters, order and key all in the index), and only the
    rows of the page are then read, instead of every row OFFSET skips over. keys_stmt overrides
    that inner query (same filters and order, e.g. with an index hint).
    """
    page, size = paging(ctx.query)
    if total is None:
        total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    rows: list[Any] = []
    if page * size < total:
        if key is not None:
            inner = (keys_stmt if keys_stmt is not None else stmt.with_only_columns(key))
            inner = inner.limit(size).offset(page * size)
            rows = list(session.scalars(stmt.where(key.in_(inner.scalar_subquery()))))
        else:
            rows = list(session.scalars(stmt.limit(size).offset(page * size)))
    return list_node(plural, rows, shape, page, size, total)


def list_node(plural: str, rows: list[Any], shape: Callable[[Any], Node], page: int, size: int, total: int) -> Node:
    """A list Node of one page's rows with its paging attributes."""
    numpages = (total + size - 1) // size
    start = page * size
    attrs = {
        "page": str(page),
        "numpages": str(numpages),
        "pagesize": str(size),
        "total": str(total),
        "start": str(start),
        "end": str(start + len(rows) - 1),
    }
    return Node(plural, [shape(r) for r in rows], attrs, is_list=True)
