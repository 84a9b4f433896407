"""Bridges and conferences on the shared media clock.

Every tick each member is sent the sum of the other members' received frames
(never its own voice), on top of whatever that member's own play() queue
contributes (e.g. a conference beep); the clock saturates the result to int16.
A two-party bridge is a Mixer of two.

``_mix`` runs on the clock's thread inside a tick; every change to the members
takes the clock's lock, so a tick never sees the dict change under it.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from ringback.media.clock import MediaClock
    from ringback.media.engine import MediaEngine, RtpSession


class Mixer:
    def __init__(self, engine: MediaEngine) -> None:
        self._engine = engine
        self._members: dict[RtpSession, bool] = {}  # session -> muted
        self._clock: MediaClock | None = None  # while attached: the clock whose ticks call _mix

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, session: object) -> bool:
        return session in self._members

    @property
    def members(self) -> list[RtpSession]:
        return list(self._members)

    def add(self, session: RtpSession, muted: bool = False) -> None:
        if session.closed:
            raise ValueError("session is closed")
        clock = self._clock or self._engine.clock
        with clock.lock:
            self._members[session] = muted
            if self._clock is None:
                clock.add_mixer(self)
                self._clock = clock

    def _locked(self) -> contextlib.AbstractContextManager[object]:
        # not attached: no tick reads this mixer, nothing to keep out
        return self._clock.lock if self._clock is not None else contextlib.nullcontext()

    def remove(self, session: RtpSession) -> None:
        with self._locked():
            self._members.pop(session, None)
            if not self._members:
                self.close()

    def set_muted(self, session: RtpSession, muted: bool) -> None:
        with self._locked():
            if session in self._members:
                self._members[session] = muted

    def is_muted(self, session: RtpSession) -> bool:
        return self._members.get(session, False)

    def close(self) -> None:
        with self._locked():
            self._members.clear()
            if self._clock is not None:
                self._clock.remove_mixer(self)
                self._clock = None

    def _mix(self, rx: npt.NDArray[np.int16], tx: npt.NDArray[np.int32], present: npt.NDArray[np.bool_]) -> None:
        members = [(s._slot, muted) for s, muted in self._members.items() if s._slot >= 0]
        if len(members) < 2:
            return
        slots = np.fromiter((m[0] for m in members), np.intp, len(members))
        speaking = np.fromiter((not m[1] for m in members), bool, len(members))
        voices = rx[slots].astype(np.int32)
        voices[~speaking] = 0  # muted members are heard by nobody
        total = voices.sum(axis=0)
        tx[slots] += total[None, :] - voices
