"""/Conferences and their Participants: list and get; mute with POST Muted, kick with DELETE."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ..store.models import Conference, Participant, utcnow
from .context import Ctx, Reply, page_of
from .errors import RestError, not_found
from .render import Node, rfc2822


def conference_node(c: Conference) -> Node:
    return Node(
        "Conference",
        [
            Node("Sid", c.sid),
            Node("AccountSid", c.account_sid),
            Node("FriendlyName", c.friendly_name),
            Node("Status", str(c.status)),
            Node("DateCreated", rfc2822(c.date_created)),
            Node("DateUpdated", rfc2822(c.date_updated)),
        ],
    )


def participant_node(p: Participant) -> Node:
    b = {True: "true", False: "false"}
    return Node(
        "Participant",
        [
            Node("ConferenceSid", p.conference_sid),
            Node("AccountSid", p.account_sid),
            Node("CallSid", p.call_sid),
            Node("Muted", b[p.muted]),
            Node("StartConferenceOnEnter", b[p.start_conference_on_enter]),
            Node("EndConferenceOnExit", b[p.end_conference_on_exit]),
            Node("DateCreated", rfc2822(p.date_created)),
            Node("DateUpdated", rfc2822(p.date_updated)),
        ],
    )


def list_conferences(ctx: Ctx) -> Reply:
    where: list[Any] = [Conference.account_sid == ctx.account_sid]
    total: int | None = None
    for c in ctx.query:
        if c.name == "Status" and c.op == "=":
            if c.value in ("0", "1", "2"):
                where.append(Conference.status == int(c.value))
            else:
                total = 0
        elif c.name == "FriendlyName" and c.op == "=":
            where.append(Conference.friendly_name == c.value)
    stmt = select(Conference).where(*where).order_by(Conference.date_updated.desc(), Conference.sid.desc())
    with ctx.store.session(readonly=True) as s:
        return Reply(doc=page_of(s, ctx, "Conferences", stmt, conference_node, total=total))


def _conf(s: Any, ctx: Ctx, sid: str) -> Conference:
    c = s.get(Conference, sid)
    if c is None or c.account_sid != ctx.account_sid:
        raise not_found()
    return c


def get_conference(ctx: Ctx, sid: str) -> Reply:
    with ctx.store.session(readonly=True) as s:
        return Reply(doc=conference_node(_conf(s, ctx, sid)))


def list_participants(ctx: Ctx, sid: str) -> Reply:
    with ctx.store.session(readonly=True) as s:
        _conf(s, ctx, sid)
        stmt = select(Participant).where(Participant.conference_sid == sid).order_by(
            Participant.date_created.desc(), Participant.call_sid.desc()
        )
        return Reply(doc=page_of(s, ctx, "Participants", stmt, participant_node))


def _participant(s: Any, ctx: Ctx, sid: str, call_sid: str) -> Participant:
    _conf(s, ctx, sid)
    p = s.get(Participant, (sid, call_sid))
    if p is None:
        raise not_found()
    return p


def get_participant(ctx: Ctx, sid: str, call_sid: str) -> Reply:
    with ctx.store.session(readonly=True) as s:
        return Reply(doc=participant_node(_participant(s, ctx, sid, call_sid)))


def update_participant(ctx: Ctx, sid: str, call_sid: str) -> Reply:
    raw = ctx.form.get("Muted")
    with ctx.store.session() as s:
        p = _participant(s, ctx, sid, call_sid)
        if raw is None or raw.lower() not in ("true", "false"):
            raise RestError(400, "Muted must be true or false", 20001)
        p.muted = raw.lower() == "true"
        p.date_updated = utcnow()
        node = participant_node(p)
    action = "muted" if raw.lower() == "true" else "unmuted"
    ctx.after.append(lambda hooks: hooks.on_participant_update(sid, call_sid, action))
    return Reply(doc=node)


def kick_participant(ctx: Ctx, sid: str, call_sid: str) -> Reply:
    with ctx.store.session() as s:
        _participant(s, ctx, sid, call_sid)
    # The engine removes the row when the call leaves the conference.
    ctx.after.append(lambda hooks: hooks.on_participant_update(sid, call_sid, "kicked"))
    return Reply(204)
