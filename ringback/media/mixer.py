"""Bridges and conferences on the shared media clock.

Every tick each member is sent the sum of the other members' received frames
(never its own voice), on top of whatever that member's own play() queue
contributes (e.g. a conference beep); the clock saturates the result to int16.
A two-party bridge is a Mixer of two.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from ringback.media.engine import MediaEngine, RtpSession


class Mixer:
    def __init__(self, engine: MediaEngine) -> None:
        self._engine = engine
        self._members: dict[RtpSession, bool] = {}  # session -> muted
        self._attached = False

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
        self._members[session] = muted
        if not self._attached:
            self._engine.clock.add_mixer(self)
            self._attached = True

    def remove(self, session: RtpSession) -> None:
        self._members.pop(session, None)
        if not self._members:
            self.close()

    def set_muted(self, session: RtpSession, muted: bool) -> None:
        if session in self._members:
            self._members[session] = muted

    def is_muted(self, session: RtpSession) -> bool:
        return self._members.get(session, False)

    def close(self) -> None:
        self._members.clear()
        if self._attached:
            self._engine.clock.remove_mixer(self)
            self._attached = False

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
