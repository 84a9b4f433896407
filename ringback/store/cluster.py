"""State shared by the nodes of one service: per-account dial pacing and node liveness.

Pacing: a token bucket per account whose state (the moment the next call may go) lives in the
database, so that two nodes each pacing at `--cps` do not together dial at twice the rate. On
PostgreSQL a claimer locks the account's bucket row with SKIP LOCKED: while one node is claiming an
account's calls, the others skip that account for this round instead of waiting on its lock.

Liveness: each node writes a heartbeat; when a node has been silent longer than the dead-after
interval, a surviving node takes its calls over (requeues what it had claimed but not dialled,
finalises what it had dialled) and removes its row. Both rely on the nodes' clocks agreeing to
well within a second (NTP), which a shared database deployment has anyway.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ringback.store.models import DialPacing, Node, utcnow


def _is_pg(session: Session) -> bool:
    return session.bind is not None and session.bind.dialect.name == "postgresql"


def _insert(session: Session) -> Any:
    return pg_insert if _is_pg(session) else sqlite_insert


def hold_buckets(session: Session, accounts: Iterable[str]) -> dict[str, float]:
    """Lock and read the buckets of these accounts: {account: next_at} for those this claimer holds.

    Accounts whose bucket another node is holding right now are left out (skip them this round).
    """
    wanted = sorted(set(accounts))
    if not wanted:
        return {}
    ins = _insert(session)
    # Rows must exist to be locked; a new account's bucket starts empty (may dial at once).
    session.execute(
        ins(DialPacing).values([{"account_sid": a, "next_at": 0.0} for a in wanted]).on_conflict_do_nothing()
    )
    q = select(DialPacing.account_sid, DialPacing.next_at).where(DialPacing.account_sid.in_(wanted))
    if _is_pg(session):
        q = q.with_for_update(skip_locked=True)
    return {a: float(t) for a, t in session.execute(q).all()}


def store_buckets(session: Session, buckets: dict[str, float]) -> None:
    """Write back the buckets taken from (held by this transaction since hold_buckets)."""
    if buckets:
        session.execute(
            update(DialPacing),
            [{"account_sid": a, "next_at": t} for a, t in buckets.items()],
        )


def heartbeat(session: Session, node_id: str) -> bool:
    """This node is alive now. False when its row was missing: first beat, or other nodes took it
    for dead (silent past dead-after) and took its calls over."""
    now = utcnow()
    if session.execute(update(Node).where(Node.node_id == node_id).values(seen_at=now)).rowcount:  # type: ignore[attr-defined]
        return True
    session.execute(_insert(session)(Node).values(node_id=node_id, seen_at=now, started_at=now).on_conflict_do_nothing())
    return False


def dead_nodes(session: Session, node_id: str, silent_since: datetime) -> list[str]:
    """Other nodes not heard from since `silent_since`, locked for takeover (PostgreSQL: SKIP LOCKED,
    so two survivors never take over the same dead node at once)."""
    q = select(Node.node_id).where(Node.node_id != node_id, Node.seen_at < silent_since)
    if _is_pg(session):
        q = q.with_for_update(skip_locked=True)
    return list(session.scalars(q))


def forget_node(session: Session, node_id: str) -> None:
    session.execute(delete(Node).where(Node.node_id == node_id))


def node_rows(session: Session) -> list[tuple[str, datetime]]:
    return [(n, t) for n, t in session.execute(select(Node.node_id, Node.seen_at).order_by(Node.node_id))]
