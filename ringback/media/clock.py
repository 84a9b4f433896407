"""The one shared 20 ms media clock of the process.

Every tick does the per-frame work of all registered sessions at once with
numpy (G.711 decode, DTMF detection, level), lets mixers combine what was
heard, then encodes all outgoing frames in one go and hands each session its
packet to send at its own phase inside the 20 ms, so packets do not leave in
one burst. Deadlines are absolute (start + k * period on the loop's monotonic
clock), so sleep errors never accumulate; lateness is measured and reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from typing import Protocol

import numpy as np
import numpy.typing as npt

from ringback.media import g711
from ringback.media.dtmf import DtmfDetector

log = logging.getLogger(__name__)

PERIOD = 0.02
SAMPLES = 160
PHASE_SLOTS = 10  # send phases inside one period (2 ms apart)
MAX_CATCH_UP = 5  # ticks run back to back after a stall; beyond that ticks are skipped
SLIP = 0.005  # a tick this late counts as a slip


class ClockMember(Protocol):
    """What a session gives the clock (implemented by engine.RtpSession)."""

    _slot: int
    _phase: int
    _alaw: bool

    def _rx_take(self, now: float) -> bytes | None: ...
    def _rx_frame(self, pcm: npt.NDArray[np.int16], level: float, now: float) -> None: ...
    def _rx_inband(self, digit: str, now: float) -> None: ...
    def _tx_take(self, now: float) -> npt.NDArray[np.int16] | None: ...
    def _tx_packet(self, codes: npt.NDArray[np.uint8], now: float) -> list[bytes]: ...
    def _tx_send(self, packets: list[bytes]) -> None: ...
    def _check_timeout(self, now: float) -> None: ...


class ClockMixer(Protocol):
    def _mix(self, rx: npt.NDArray[np.int16], tx: npt.NDArray[np.int32], present: npt.NDArray[np.bool_]) -> None: ...


class MediaClock:
    """Drives all sessions of one event loop; get it with ``MediaClock.shared()``."""

    _instances: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, MediaClock] = weakref.WeakKeyDictionary()

    def __init__(self, period: float = PERIOD) -> None:
        self.period = period
        self._members: list[ClockMember | None] = []
        self._free: list[int] = []
        self._mixers: list[ClockMixer] = []
        self._dtmf = DtmfDetector(0)
        self._task: asyncio.Task[None] | None = None
        self._users = 0
        self.ticks = 0
        self.slips = 0  # ticks that started more than 5 ms late
        self.skipped = 0  # ticks dropped after a long stall
        self.max_late = 0.0
        self.tick_cost = 0.0  # seconds of CPU-bound work in the last tick
        self.max_tick_cost = 0.0

    @classmethod
    def shared(cls) -> MediaClock:
        loop = asyncio.get_running_loop()
        clock = cls._instances.get(loop)
        if clock is None:
            clock = cls._instances[loop] = cls()
        return clock

    # -- lifetime: engines acquire/release the clock; it runs while anyone uses it

    def acquire(self) -> None:
        self._users += 1
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="media-clock")

    async def release(self) -> None:
        self._users = max(0, self._users - 1)
        if self._users == 0 and self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def stats(self) -> dict[str, float | int]:
        return {
            "ticks": self.ticks,
            "slips": self.slips,
            "skipped": self.skipped,
            "max_late_ms": round(self.max_late * 1000, 3),
            "tick_cost_ms": round(self.tick_cost * 1000, 3),
            "max_tick_cost_ms": round(self.max_tick_cost * 1000, 3),
            "members": len(self._members) - len(self._free),
        }

    # -- membership

    def register(self, member: ClockMember) -> None:
        if self._free:
            slot = self._free.pop()
            self._members[slot] = member
            self._dtmf.reset(slot)
        else:
            slot = len(self._members)
            self._members.append(member)
            if slot >= self._dtmf.n:
                self._dtmf.resize(max(16, 2 * self._dtmf.n))
        member._slot = slot

    def unregister(self, member: ClockMember) -> None:
        slot = member._slot
        if 0 <= slot < len(self._members) and self._members[slot] is member:
            self._members[slot] = None
            self._free.append(slot)
        member._slot = -1

    def add_mixer(self, mixer: ClockMixer) -> None:
        if mixer not in self._mixers:
            self._mixers.append(mixer)

    def remove_mixer(self, mixer: ClockMixer) -> None:
        if mixer in self._mixers:
            self._mixers.remove(mixer)

    # -- the loop

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        k = 0
        while True:
            k += 1
            deadline = start + k * self.period
            delay = deadline - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            now = loop.time()
            late = now - deadline
            if late > MAX_CATCH_UP * self.period:
                # a long stall: drop the missed ticks rather than bursting them out
                missed = int(late / self.period)
                k += missed
                self.skipped += missed
                deadline = start + k * self.period
                late = now - deadline
            self.max_late = max(self.max_late, late)
            if late > SLIP:
                self.slips += 1
            try:
                self.tick(now, deadline)
            except Exception:  # never let one bad frame stop every call's media
                log.exception("media tick failed")
            if late > 0:
                # still catching up: let I/O callbacks in before the next tick
                await asyncio.sleep(0)

    def tick(self, now: float, deadline: float | None = None) -> None:
        """One 20 ms frame for every member (public so tests can drive it by hand)."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        self.ticks += 1
        n = self._dtmf.n
        members = self._members
        codes = np.empty((n, SAMPLES), np.uint8)
        codes[:] = 0xFF
        present = np.zeros(n, bool)
        alaw = np.zeros(n, bool)
        for slot, m in enumerate(members):
            if m is None:
                continue
            m._check_timeout(now)
            payload = m._rx_take(now)
            if m._alaw:
                alaw[slot] = True
            if payload is not None:
                present[slot] = True
                k = min(len(payload), SAMPLES)
                codes[slot, :k] = np.frombuffer(payload, np.uint8, k)
                if k < SAMPLES:
                    codes[slot, k:] = g711.silence_code(8 if m._alaw else 0)
        rx = g711.ULAW_DECODE[codes]
        if alaw.any():
            rx[alaw] = g711.ALAW_DECODE[codes[alaw]]
        rx[~present] = 0
        for slot, digit in self._dtmf.process(rx):
            m = members[slot] if slot < len(members) else None
            if m is not None:
                m._rx_inband(digit, now)
        rxf = rx.astype(np.float32)
        level = np.sqrt(np.einsum("ij,ij->i", rxf, rxf) / SAMPLES)
        for slot, m in enumerate(members):
            if m is not None:
                m._rx_frame(rx[slot], float(level[slot]), now)

        # send side: what each member plays, plus what mixers route to it
        tx = np.zeros((n, SAMPLES), np.int32)
        for slot, m in enumerate(members):
            if m is None:
                continue
            frame = m._tx_take(now)
            if frame is not None:
                tx[slot, : len(frame)] = frame
        for mixer in self._mixers:
            mixer._mix(rx, tx, present)
        out = np.clip(tx, -32768, 32767).astype(np.int16)
        enc = g711.ulaw_encode(out)
        if alaw.any():
            enc[alaw] = g711.alaw_encode(out[alaw])
        batches: list[list[tuple[ClockMember, list[bytes]]]] = [[] for _ in range(PHASE_SLOTS)]
        for slot, m in enumerate(members):
            if m is None:
                continue
            pkt = m._tx_packet(enc[slot], now)
            if pkt:
                batches[m._phase].append((m, pkt))
        base = deadline if deadline is not None else now
        step = self.period / PHASE_SLOTS
        for i, batch in enumerate(batches):
            if not batch:
                continue
            at = base + i * step
            if i == 0 or at <= loop.time():
                _send_batch(batch)
            else:
                loop.call_at(at, _send_batch, batch)
        self.tick_cost = loop.time() - t0
        self.max_tick_cost = max(self.max_tick_cost, self.tick_cost)


def _send_batch(batch: list[tuple[ClockMember, list[bytes]]]) -> None:
    for m, pkt in batch:
        m._tx_send(pkt)
