"""<Dial><Conference>: rooms scoped to an account, mixed so nobody hears their own voice.

A room starts when a participant with startConferenceOnEnter joins; until then the others hear
the wait document (or hold music) and are not mixed in. endConferenceOnExit ends the room for
everyone. Participants can be muted or kicked through the REST API (`control()`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, update

from ringback.sids import new_sid
from ringback.store.models import Conference, Participant, utcnow
from ringback.twiml.channel import ConferenceOptions, ConferenceResult

if TYPE_CHECKING:
    from ringback.engine.channel import LegChannel
    from ringback.engine.context import EngineContext

log = logging.getLogger("ringback.conference")

INIT, IN_PROGRESS, COMPLETED = 0, 1, 2


@dataclass
class Member:
    chan: LegChannel
    muted: bool
    kicked: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Room:
    sid: str
    account_sid: str
    name: str
    mixer: Any
    members: dict[str, Member] = field(default_factory=dict)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class Conferences:
    """The live rooms of this node."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.rooms: dict[tuple[str, str], Room] = {}
        self._lock = asyncio.Lock()

    async def room(self, account_sid: str, name: str) -> Room:
        async with self._lock:
            key = (account_sid, name)
            room = self.rooms.get(key)
            if room is not None and not room.ended.is_set():
                return room
            from ringback.media.mixer import Mixer

            sid = new_sid("CF")
            now = utcnow()
            await self.ctx.db(lambda s: s.add(Conference(
                sid=sid, account_sid=account_sid, friendly_name=name, status=INIT, date_created=now, date_updated=now
            )))
            room = Room(sid=sid, account_sid=account_sid, name=name, mixer=Mixer(self.ctx.media))
            self.rooms[key] = room
            return room

    def by_sid(self, conference_sid: str) -> Room | None:
        return next((r for r in self.rooms.values() if r.sid == conference_sid), None)

    def control(self, conference_sid: str, call_sid: str, action: str) -> bool:
        """REST control of a participant: 'mute', 'unmute' or 'kick'. False if not live here."""
        room = self.by_sid(conference_sid)
        member = room.members.get(call_sid) if room else None
        if room is None or member is None:
            return False
        if action in ("mute", "unmute"):
            member.muted = action == "mute"
            if room.started.is_set():
                room.mixer.set_muted(member.chan.leg.media, member.muted)
        elif action == "kick":
            member.kicked.set()
        return True

    async def close_room(self, room: Room) -> None:
        self.rooms.pop((room.account_sid, room.name), None)
        room.ended.set()
        close = getattr(room.mixer, "close", None)
        if close is not None:
            res = close()
            if asyncio.iscoroutine(res):
                await res
        now = utcnow()
        await self.ctx.db(lambda s: s.execute(
            update(Conference).where(Conference.sid == room.sid).values(status=COMPLETED, date_updated=now)
        ))


async def _beep_all(room: Room) -> None:
    from ringback.media.tones import beep

    tone = beep(880.0, 300)
    for m in list(room.members.values()):
        with contextlib.suppress(Exception):
            asyncio.ensure_future(m.chan.leg.media.play(tone))


async def join(chan: LegChannel, options: ConferenceOptions) -> ConferenceResult:
    ctx = chan.ctx
    confs: Conferences = ctx.conferences
    room = await confs.room(chan.account_sid, options.name)
    member = Member(chan, options.muted)
    now = utcnow()
    await ctx.db(lambda s: s.merge(Participant(
        conference_sid=room.sid, call_sid=chan.call_sid, account_sid=chan.account_sid, muted=options.muted,
        start_conference_on_enter=options.start_on_enter, end_conference_on_exit=options.end_on_exit,
        date_created=now, date_updated=now,
    )))
    room.members[chan.call_sid] = member
    joined = time.monotonic()
    ended_by = "none"
    media = chan.leg.media
    try:
        if options.start_on_enter and not room.started.is_set():
            room.started.set()
            await ctx.db(lambda s: s.execute(
                update(Conference).where(Conference.sid == room.sid).values(status=IN_PROGRESS, date_updated=utcnow())
            ))
        if not room.started.is_set():
            hold = asyncio.ensure_future(options.wait()) if options.wait else None
            waiters = {asyncio.ensure_future(room.started.wait()), asyncio.ensure_future(chan.hung_up.wait()),
                       asyncio.ensure_future(member.kicked.wait()), asyncio.ensure_future(room.ended.wait())}
            try:
                await asyncio.wait(waiters, timeout=options.time_limit, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()
                if hold is not None:
                    hold.cancel()
                    with contextlib.suppress(BaseException):
                        await hold
                media.stop_playback()
        if room.started.is_set() and not chan.hung_up.is_set() and not member.kicked.is_set():
            room.mixer.add(media, muted=member.muted)
            if options.beep:
                await _beep_all(room)
            remaining = max(0.0, options.time_limit - (time.monotonic() - joined))
            waiters2: dict[str, asyncio.Future[Any]] = {
                "caller": asyncio.ensure_future(chan.hung_up.wait()),
                "kicked": asyncio.ensure_future(member.kicked.wait()),
                "end-on-exit": asyncio.ensure_future(room.ended.wait()),
            }
            if options.hangup_on_star:
                waiters2["star"] = asyncio.ensure_future(chan.leg.wait_key("*"))
            try:
                done, _ = await asyncio.wait(waiters2.values(), timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters2.values():
                    w.cancel()
            ended_by = next((k for k, w in waiters2.items() if w in done), "time-limit")
            if ended_by == "kicked":
                # A kicked participant leaves the room; its call goes on after the <Dial>.
                ended_by = "none"
    finally:
        with contextlib.suppress(Exception):
            room.mixer.remove(media)
        room.members.pop(chan.call_sid, None)
        await ctx.db(lambda s: s.execute(delete(Participant).where(
            Participant.conference_sid == room.sid, Participant.call_sid == chan.call_sid
        )))
        if options.end_on_exit and room.started.is_set() or not room.members:
            await confs.close_room(room)
        elif options.beep and room.started.is_set():
            await _beep_all(room)
    return ConferenceResult(status="completed", duration=time.monotonic() - joined, ended_by=ended_by)  # type: ignore[arg-type]
