"""The engine's durable call queue and the call's state transitions.

Several claimers (nodes) may share one database: a queued call is claimed by an atomic
compare-and-set (`UPDATE ... WHERE state='queued'`), and on PostgreSQL the candidate rows are
read with `FOR UPDATE SKIP LOCKED` so claimers do not queue up behind each other's locks.
A durable "dialing" mark is written before an INVITE leaves; after a crash such calls are
finalised (Status 4 and a Notification), never dialled again.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ringback.store.models import (
    STATUS_APP_ERROR,
    STATUS_IN_PROGRESS,
    STATUS_QUEUED,
    Call,
    utcnow,
)

# States in which an INVITE may have left: after a crash these calls are finalised, never redialled.
DIALED_STATES = ("dialing", "ringing", "analysing", "running")


def queued_candidates(session: Session, limit: int, skip_accounts: Iterable[str] = ()) -> list[tuple[str, str]]:
    """(sid, account_sid) of the oldest queued top-level calls, not yet claimed."""
    q = (
        select(Call.sid, Call.account_sid)
        .where(Call.state == "queued", Call.parent_sid.is_(None))
        .order_by(Call.date_created)
        .limit(limit)
    )
    skip = list(skip_accounts)
    if skip:
        q = q.where(Call.account_sid.not_in(skip))
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    return [(r[0], r[1]) for r in session.execute(q).all()]


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
    session.execute(
        update(Call)
        .where(Call.sid == sid)
        .values(state="dialing", status=STATUS_IN_PROGRESS, start_time=now, date_updated=now)
        .execution_options(synchronize_session=False)
    )
    return now


def set_state(session: Session, sid: str, state: str, **values: object) -> None:
    now = utcnow()
    session.execute(
        update(Call)
        .where(Call.sid == sid)
        .values(state=state, date_updated=now, **values)
        .execution_options(synchronize_session=False)
    )


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
    session.execute(
        update(Call).where(Call.sid == sid).values(**values).execution_options(synchronize_session=False)
    )


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
    values: dict[str, object] = {"state": "ended", "status": STATUS_APP_ERROR, "date_updated": utcnow()}
    session.execute(
        update(Call).where(Call.sid == call.sid).values(**values).execution_options(synchronize_session=False)
    )


def queued_count(session: Session) -> int:
    from sqlalchemy import func

    return int(session.scalar(select(func.count()).select_from(Call).where(Call.state == "queued")) or 0)


def stale_cutoff(seconds: float) -> datetime:
    return utcnow() - timedelta(seconds=seconds)


__all__ = [
    "DIALED_STATES",
    "STATUS_QUEUED",
    "claim",
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
