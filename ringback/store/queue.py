"""The engine's durable call queue and the call's state transitions.

Several claimers (nodes) may share one database: a queued call is claimed by an atomic
compare-and-set (`UPDATE ... WHERE state='queued'`), and on PostgreSQL the candidate rows are
read with `FOR UPDATE SKIP LOCKED` so claimers do not queue up behind each other's locks.
A durable "dialing" mark is written before an INVITE leaves; after a crash such calls are
finalised (Status 4 and a Notification), never dialled again.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.orm import Session

from ringback.store.hot import HotStatement
from ringback.store.models import (
    STATUS_APP_ERROR,
    STATUS_IN_PROGRESS,
    STATUS_QUEUED,
    Call,
    utcnow,
)

# States in which an INVITE may have left: after a crash these calls are finalised, never redialled.
DIALED_STATES = ("dialing", "ringing", "analysing", "running")


def queued_candidates(
    session: Session, limit: int, skip_accounts: Iterable[str] = (), *, lock: bool = True
) -> list[tuple[str, str]]:
    """(sid, account_sid) of the oldest queued top-level calls, not yet claimed. On PostgreSQL they
    are locked for the claim (SKIP LOCKED), unless lock=False: a plain read, e.g. to look first."""
    skip = list(skip_accounts)
    for_update = lock and session.bind is not None and session.bind.dialect.name == "postgresql"
    if not skip:
        # The dialer's poll, once per wake-up: on the raw cursor (store/hot.py).
        return [(r[0], r[1]) for r in _hot_candidates(limit, for_update).execute(session, {}).fetchall()]
    q = _candidates(limit, for_update).where(Call.account_sid.not_in(skip))
    return [(r[0], r[1]) for r in session.execute(q).all()]


@functools.cache
def _candidates(limit: int, for_update: bool) -> Select[tuple[str, str]]:
    # Built once per (limit, locking): the dialer runs this on every wake-up, that is per commit.
    q = (
        select(Call.sid, Call.account_sid)
        .where(Call.state == "queued", Call.parent_sid.is_(None))
        .order_by(Call.date_created)
        .limit(limit)
    )
    return q.with_for_update(skip_locked=True) if for_update else q


@functools.cache
def _hot_candidates(limit: int, for_update: bool) -> HotStatement:
    return HotStatement(_candidates(limit, for_update))


# The engine's per-call writes, built once: a statement built per call costs its construction and
# its cache key on every execution, and the ORM's bulk-update path adds more; these run as
# HotStatements on the session's raw cursor (store/hot.py: same SQL, same transaction). Bind names
# must differ from the column names the SET clause uses.
_CALLS = Call.__table__
_CLAIM_RETURNING = (
    _CALLS.c.sid, _CALLS.c.account_sid, _CALLS.c.caller, _CALLS.c.called, _CALLS.c.url, _CALLS.c.method,
    _CALLS.c.send_digits, _CALLS.c.if_machine, _CALLS.c.timeout, _CALLS.c.flags,
)
_CLAIM = (
    update(_CALLS)
    .where(_CALLS.c.sid == bindparam("b_sid", type_=_CALLS.c.sid.type), _CALLS.c.state == "queued")
    .values(state="claimed", claimed_by=bindparam("b_node", type_=_CALLS.c.claimed_by.type),
            claimed_at=bindparam("b_now", type_=_CALLS.c.claimed_at.type))
)
_HOT_CLAIM = HotStatement(_CLAIM)
_HOT_CLAIM_RETURNING = HotStatement(_CLAIM.returning(*_CLAIM_RETURNING))
_HOT_CLAIMED = HotStatement(
    select(*_CLAIM_RETURNING).where(_CALLS.c.sid == bindparam("b_sid", type_=_CALLS.c.sid.type))
)


@functools.cache
def _update_by_sid(columns: tuple[str, ...]) -> HotStatement:
    """UPDATE calls SET <columns> WHERE sid = :b_sid, one statement per set of columns."""
    return HotStatement(
        update(_CALLS)
        .where(_CALLS.c.sid == bindparam("b_sid", type_=_CALLS.c.sid.type))
        .values({c: bindparam("b_" + c, type_=_CALLS.c[c].type) for c in columns})
    )


def _update(session: Session, sid: str, values: dict[str, object]) -> None:
    _autoflush(session)
    params = {"b_" + k: v for k, v in values.items()}
    params["b_sid"] = sid
    _update_by_sid(tuple(values)).execute(session, params)


def _autoflush(session: Session) -> None:
    # The ORM path these statements replace autoflushed pending objects first; keep that.
    if session.autoflush:
        session.flush()


def claim_row(session: Session, sid: str, node_id: str) -> tuple[Any, ...] | None:
    """claim() without loading the ORM row: the UPDATE returns what the engine needs (sid,
    account_sid, caller, called, url, method, send_digits, if_machine, timeout, flags).

    One statement instead of an UPDATE and a SELECT through the identity map, per call, run on
    the raw cursor (store/hot.py).
    """
    _autoflush(session)
    params = {"b_sid": sid, "b_node": node_id, "b_now": utcnow()}
    if session.connection().dialect.update_returning:
        row = _HOT_CLAIM_RETURNING.execute(session, params).fetchone()
        return tuple(row) if row is not None else None
    if _HOT_CLAIM.execute(session, params).rowcount != 1:
        return None
    return _HOT_CLAIMED.execute(session, {"b_sid": sid}).fetchone()


def claim(session: Session, sid: str, node_id: str) -> Call | None:
    """Atomically take a queued call for this node; None if another claimer got it first."""
    now = utcnow()
    res = session.execute(
        update(Call)
        .where(Call.sid == sid, Call.state == "queued")
        .values(state="claimed", claimed_by=node_id, claimed_at=now)
        .execution_options(synchronize_session=False)
    )
    if res.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return session.get(Call, sid, populate_existing=True)


def mark_dialing(session: Session, sid: str) -> datetime:
    """The durable mark written before the INVITE: REST Status 1 and StartTime from here on."""
    now = utcnow()
    _update(session, sid, {"state": "dialing", "status": STATUS_IN_PROGRESS, "start_time": now, "date_updated": now})
    return now


def set_state(session: Session, sid: str, state: str, **values: object) -> None:
    _update(session, sid, {"state": state, "date_updated": utcnow(), **values})


def finalize(
    session: Session,
    sid: str,
    *,
    status: int,
    dial_status: str | None = None,
    sip_code: int | None = None,
    answered_at: datetime | None = None,
    ended_at: datetime | None = None,
) -> None:
    """Write a call's final state. EndTime and Duration only for answered calls (reference 2.2)."""
    now = ended_at or utcnow()
    values: dict[str, object] = {"state": "ended", "status": status, "date_updated": now}
    if dial_status is not None:
        values["dial_status"] = dial_status
    if sip_code is not None:
        values["sip_response_code"] = sip_code
    if answered_at is not None:
        values["end_time"] = now
        values["duration"] = max(0, round((now - answered_at).total_seconds()))
    _update(session, sid, values)


def take_redirect(session: Session, sid: str) -> tuple[str, str] | None:
    """Consume a pending live redirect (POST /Calls/{CA} CurrentUrl) written by the API."""
    row = session.execute(select(Call.redirect_url, Call.redirect_method).where(Call.sid == sid)).first()
    if row is None or not row[0]:
        return None
    session.execute(
        update(Call)
        .where(Call.sid == sid)
        .values(redirect_url=None, redirect_method=None)
        .execution_options(synchronize_session=False)
    )
    return row[0], row[1] or "POST"


def recover(session: Session, node_id: str, *, stale_before: datetime | None = None) -> tuple[int, list[Call]]:
    """After a restart: put back calls claimed but never dialled, and return those that had
    dialled (to be finalised with Status 4 and a Notification by the caller).

    Calls of this node are recovered; with `stale_before`, also any node's calls claimed before it
    (a dead node's calls, taken over by the survivors).
    """
    owner = Call.claimed_by == node_id
    if stale_before is not None:
        owner = owner | (Call.claimed_at < stale_before)
    requeued = session.execute(
        update(Call)
        .where(owner, Call.state == "claimed")
        .values(state="queued", claimed_by=None, claimed_at=None)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    dead = list(session.scalars(select(Call).where(owner, Call.state.in_(DIALED_STATES))))
    return requeued, dead


def crash_finalize(session: Session, call: Call) -> None:
    """Finalise a call that was live when its node died: Status 4 ("Failed - Application Error").

    EndTime and Duration stay empty: the call did not complete successfully and its true end is unknown.
    """
    _update(session, call.sid, {"state": "ended", "status": STATUS_APP_ERROR, "date_updated": utcnow()})


def queued_count(session: Session) -> int:
    from sqlalchemy import func

    return int(session.scalar(select(func.count()).select_from(Call).where(Call.state == "queued")) or 0)


def stale_cutoff(seconds: float) -> datetime:
    return utcnow() - timedelta(seconds=seconds)


__all__ = [
    "DIALED_STATES",
    "STATUS_QUEUED",
    "claim",
    "claim_row",
    "crash_finalize",
    "finalize",
    "mark_dialing",
    "queued_candidates",
    "queued_count",
    "recover",
    "set_state",
    "stale_cutoff",
    "take_redirect",
]
