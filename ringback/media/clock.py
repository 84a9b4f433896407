"""The one shared 20 ms media clock of the process.

Every tick does the work of all registered sessions at once:

1. receive: one ``epoll`` over every session's socket says which have data;
   each ready socket gives one datagram per round, and rounds repeat until no
   socket is ready (level-triggered, so a socket that had two packets is
   simply ready again; no EAGAIN exception per socket per tick);
2. decode: each session's jitter buffer hands out its frame, the frames are
   joined into one ``(n, 160)`` code matrix and G.711-decoded with one table
   lookup; DTMF detection and levels run on the whole matrix;
3. send: what the sessions play (plus what mixers route) is G.711-encoded in
   one lookup, written into a preallocated packet matrix whose RTP headers
   (sequence, timestamp, marker, payload type, SSRC) are filled column-wise
   from per-session arrays, and each row leaves with one ``sendto`` on the
   session's raw non-blocking socket, in the session's phase group: ten groups
   2 ms apart, so packets do not leave in one burst. A frame is built in one
   tick and leaves in the next (20 ms of latency) so that when a packet leaves
   does not depend on how long the tick's work takes: the work pauses at
   checkpoints to send the groups that fall due.

Per packet there is no Python object besides the received ``bytes``; per
session per tick the Python work is the jitter-buffer pop and one ``sendto``.
Deadlines are absolute (start + k * period on ``time.monotonic()``), so sleep
errors never accumulate; lateness is measured and reported.

Threads. The clock runs in a thread of its own ("media-clock"), not as a task
on the event loop: call setup, SIP, the dialer and webhooks share that loop,
and ticks that waited behind their callbacks put 2% of packets more than 5 ms
off grid at 100 POST /Calls per second (bench/engine/bench_clock_under_load.py,
0% without that load).
The sockets are raw and non-blocking and the waits are ``threading.Event.wait``,
so nothing here needs asyncio. The thread sleeps until each deadline (sending
the phase groups that fall due meanwhile), and while it runs the interpreter's
switch interval is lowered (``SWITCH_INTERVAL``) so that it gets the GIL back
from a busy event loop within about a millisecond, not CPython's default 5 ms.
Between the two threads:

* ``lock`` (re-entrant) is held by the thread for each tick's work, not while
  it sleeps or sends; the event loop holds it to change anything a tick reads
  that must not change mid-tick: membership (``register``, ``unregister``,
  ``configure``), mixers and their members, a session's remote address;
* what a tick produces for the event loop (digits, frames for taps, AMD events,
  finished plays, RTP timeouts) is queued with ``call_soon`` and handed over
  after the tick in one ``loop.call_soon_threadsafe``, so asyncio objects are
  only ever touched on the loop's own thread;
* a session's play and digit-sending queues need no lock: only the event loop
  appends to them and only the clock pops them; the loop cancels an item by
  completing its future, and the clock drops completed items.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from ringback.media import g711
from ringback.media._blas import limit_blas_threads
from ringback.media.dtmf import DtmfDetector
from ringback.media.sender import group_message, slow_message
from ringback.media.sender_link import SenderLink
from ringback.media.sender_link import available as sender_available

log = logging.getLogger(__name__)

PERIOD = 0.02
SAMPLES = 160
PHASE_SLOTS = 10  # send phases inside one period (2 ms apart)
MAX_CATCH_UP = 5  # ticks run back to back after a stall; beyond that ticks are skipped
SLIP = 0.005  # a tick this late counts as a slip
# Receive rounds per tick (one datagram per ready socket per round). A peer sends one
# packet per tick; four absorb a jitter burst. A tick that starts late reads two, so
# that after a stall the backlog is shed (the kernel drops what overflows a socket's
# small buffer) instead of every tick reading it all, running late, and finding more:
# that spiral is what stopped the clock at 1,000 calls.
MAX_ROUNDS = 4
LATE_ROUNDS = 2
TIMEOUT_EVERY = 5  # ticks between RTP-timeout checks (100 ms: timeouts are seconds long)
PACKET = 12 + SAMPLES
# How long CPython lets a thread run Python code while another waits for the GIL (default
# 5 ms). After each sleep the clock thread waits up to that long for a busy event loop to let
# the GIL go, and again whenever numpy or a socket call in its tick released it meanwhile: at
# 5 ms two such waits take a tick past the 5 ms slip. 1 ms keeps each wait well inside it; the
# forced switches it adds (at most one per ms while both threads want the GIL, a few us each)
# cost the event loop well under 1%.
SWITCH_INTERVAL = 0.001
STOP_TIMEOUT = 5.0  # seconds release() waits for the thread to finish its tick and exit

_SIL_ULAW = bytes([g711.silence_code(g711.PCMU)]) * SAMPLES
# one record per session: the RTP packet exactly as it goes on the wire
_WIRE = np.dtype([("b0", "u1"), ("b1", "u1"), ("seq", ">u2"), ("ts", ">u4"), ("ssrc", ">u4"),
                  ("payload", "u1", (SAMPLES,))])


class ClockMember(Protocol):
    """What a session gives the clock (implemented by engine.RtpSession)."""

    _slot: int
    _phase: int
    _alaw: bool
    _dest: tuple[str, int] | None
    _plays: object
    _programs: object
    _taps: list[object]
    _send_errors: int
    _tx_event_packets: int
    _released: asyncio.Future[None] | None

    def fileno(self) -> int: ...
    def _read_one(self, now: float) -> bool: ...
    def _drain(self, now: float) -> None: ...
    def _rx_take(self, now: float) -> bytes | None: ...
    def _rx_frame(self, pcm: npt.NDArray[np.int16], level: float, now: float) -> None: ...
    def _rx_inband(self, digit: str, now: float) -> None: ...
    def _tx_take(self, now: float) -> npt.NDArray[np.int16] | None: ...
    def _tx_program(self, clock: MediaClock) -> list[bytes] | None: ...
    def _tx_send(self, packets: list[bytes]) -> None: ...
    def _sendto(self, data: memoryview, addr: tuple[str, int]) -> int: ...
    def _check_timeout(self, now: float) -> None: ...
    def _sender_init(self) -> tuple[int, int, int, int]: ...


class ClockMixer(Protocol):
    def _mix(self, rx: npt.NDArray[np.int16], tx: npt.NDArray[np.int32], present: npt.NDArray[np.bool_]) -> None: ...


class MediaClock:
    """Drives all sessions of one event loop from its own thread; get it with ``MediaClock.shared()``."""

    _instances: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, MediaClock] = weakref.WeakKeyDictionary()

    def __init__(self, period: float = PERIOD) -> None:
        limit_blas_threads()
        self.period = period
        self._members: list[ClockMember | None] = []
        self._free: list[int] = []
        # a freed slot waits two ticks before reuse: the frame built before it was freed may
        # still be leaving during the next tick, and must not go out from a new session's socket
        self._freed: list[int] = []
        self._freeing: list[int] = []
        self._mixers: list[ClockMixer] = []
        self._dtmf = DtmfDetector(0)
        self._epoll: select.epoll | None = None  # opened while the clock has users (one fd per event loop)
        self._by_fd: dict[int, ClockMember] = {}
        self._live = 0  # registered members (slots stay allocated after their member leaves)
        self._due: list[tuple[float, _Group]] = []  # groups of the frame now leaving, by send time (clock thread)
        # see the module docstring: the lock keeps the event loop's changes out of a tick
        self.lock = threading.RLock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._calls: list[tuple[Callable[..., object], tuple[Any, ...]]] = []  # for the loop, after this tick
        self._prepared: tuple[list[memoryview], list[list[int]], list[list[tuple[ClockMember, list[bytes]]]]] | None = None
        self._cap = 0
        # per-slot sender state; the packet matrices are double-buffered so a phase group
        # still waiting to leave never sees the next tick's rows
        self._seq = np.zeros(0, np.uint16)
        self._ts = np.zeros(0, np.uint32)
        self._pt = np.zeros(0, np.uint8)
        self._mark = np.zeros(0, bool)
        self._alaw = np.zeros(0, bool)
        self._phase = np.zeros(0, np.int8)
        self._txn = np.zeros(0, np.int64)
        self._level = np.zeros(0, np.float32)
        self._wire: list[npt.NDArray[np.void]] = [np.zeros(0, _WIRE), np.zeros(0, _WIRE)]
        self._views: list[list[memoryview]] = [[], []]
        self._flip = 0
        self._users = 0
        self.ticks = 0
        self.slips = 0  # ticks that started more than 5 ms late
        self.skipped = 0  # ticks dropped after a long stall
        self.max_late = 0.0
        self.tick_cost = 0.0  # seconds of CPU-bound work in the last tick
        self.max_tick_cost = 0.0
        self.rx_rounds_capped = 0  # ticks that left datagrams for the next tick
        # the media sender process (ringback/media/sender.py) while it works; None: this
        # thread sends. Slots carry a generation so the sender never sends a packet built for a
        # closed session from the socket of the session that took its slot.
        self._link: SenderLink | None = None
        self._gen = np.zeros(0, np.uint32)
        self._shipped: list[object] = []  # per slot: the destination the sender was last told
        self.sender_fallbacks = 0

    @classmethod
    def shared(cls) -> MediaClock:
        loop = asyncio.get_running_loop()
        clock = cls._instances.get(loop)
        if clock is None:
            clock = cls._instances[loop] = cls()
        return clock

    # -- lifetime: engines acquire/release the clock; its thread runs while anyone uses it

    def acquire(self) -> None:
        self._users += 1
        self._loop = asyncio.get_running_loop()
        with self.lock:
            if self._epoll is None and hasattr(select, "epoll"):
                self._epoll = select.epoll()
        if self._thread is not None and not self._thread.is_alive():  # died (it logged why)
            self._thread = None
            _switch_interval_users(-1)
        if self._thread is None:
            self._stop.clear()
            if _use_sender and self._link is None and sender_available():
                self._start_sender()
            _switch_interval_users(+1)
            self._thread = threading.Thread(target=self._run, name="media-clock", daemon=True)
            self._thread.start()

    async def release(self) -> None:
        self._users = max(0, self._users - 1)
        if self._users == 0 and self._thread is not None:
            thread, self._thread = self._thread, None
            self._stop.set()  # wakes the thread at once: it sends what is pending and exits
            thread.join(STOP_TIMEOUT)
            if thread.is_alive():
                log.error("media clock thread did not stop within %.0f s", STOP_TIMEOUT)
            _switch_interval_users(-1)
            with self.lock:
                link, self._link = self._link, None
                if link is not None:
                    link.close()
                if self._epoll is not None and not self._by_fd:
                    self._epoll.close()  # a test suite makes one loop, so one clock, per test
                    self._epoll = None

    def _start_sender(self) -> None:
        try:
            link = SenderLink(_rt_priority)
        except OSError as exc:
            log.warning("media sender could not start (%s); the clock sends from its own thread", exc)
            return
        with self.lock:
            self._link = link
            for slot, m in enumerate(self._members):  # a clock used again keeps its members
                if m is not None:
                    link.adopt(slot, int(self._gen[slot]), m.fileno())
                    self._shipped[slot] = None

    @property
    def sender(self) -> SenderLink | None:
        """The media sender process while the clock uses it."""
        return self._link

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def call_soon(self, fn: Callable[..., object], *args: Any) -> None:
        """Run ``fn(*args)`` on the event loop after this tick (for code that runs inside a tick)."""
        self._calls.append((fn, args))

    @property
    def mixers(self) -> list[ClockMixer]:
        return list(self._mixers)

    def stats(self) -> dict[str, float | int]:
        return {
            "ticks": self.ticks,
            "slips": self.slips,
            "skipped": self.skipped,
            "max_late_ms": round(self.max_late * 1000, 3),
            "tick_cost_ms": round(self.tick_cost * 1000, 3),
            "max_tick_cost_ms": round(self.max_tick_cost * 1000, 3),
            "rx_rounds_capped": self.rx_rounds_capped,
            "members": len(self._members) - len(self._free) - len(self._freed) - len(self._freeing),
            "sender_pid": self._link.pid if self._link is not None else 0,
            "sender_dropped": self._link.dropped if self._link is not None else 0,
            "sender_fallbacks": self.sender_fallbacks,
        }

    # -- membership

    def _grow(self, cap: int) -> None:
        old = self._cap

        def grown(a: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
            b = np.zeros(cap, a.dtype)
            b[:old] = a[:old]
            return b

        self._seq = grown(self._seq)
        self._ts = grown(self._ts)
        self._pt = grown(self._pt)
        self._mark = grown(self._mark)
        self._alaw = grown(self._alaw)
        self._phase = grown(self._phase)
        self._txn = grown(self._txn)
        self._level = grown(self._level)
        self._gen = grown(self._gen)
        self._shipped.extend([None] * (cap - len(self._shipped)))
        for i in (0, 1):
            w = grown(self._wire[i])
            w["b0"] = 0x80  # version 2, no padding, extension or CSRC
            self._wire[i] = w
            raw = w.view(np.uint8).reshape(cap, PACKET)
            self._views[i] = [memoryview(raw[k]) for k in range(cap)]
        self._dtmf.resize(cap)
        self._cap = cap

    def register(self, member: ClockMember) -> None:
        with self.lock:
            self._register(member)

    def _register(self, member: ClockMember) -> None:
        if self._free:
            slot = self._free.pop()
            self._members[slot] = member
            self._dtmf.reset(slot)
        else:
            slot = len(self._members)
            self._members.append(member)
            if slot >= self._cap:
                self._grow(max(16, 2 * self._cap))
        member._slot = slot
        self._live += 1
        seq, ts, ssrc, pt = member._sender_init()
        self._seq[slot] = seq
        self._ts[slot] = ts
        self._pt[slot] = pt
        self._mark[slot] = True  # the first packet starts a talkspurt
        self._alaw[slot] = member._alaw
        self._phase[slot] = member._phase
        self._txn[slot] = 0
        self._level[slot] = 0.0
        for w in self._wire:
            w["ssrc"][slot] = ssrc
        self._gen[slot] += 1
        self._shipped[slot] = None
        if self._link is not None:
            self._link.adopt(slot, int(self._gen[slot]), member.fileno())
        if self._epoll is None and hasattr(select, "epoll"):
            self._epoll = select.epoll()
        if self._epoll is not None:
            fd = member.fileno()
            self._epoll.register(fd, select.EPOLLIN)
            self._by_fd[fd] = member

    def unregister(self, member: ClockMember) -> int:
        """Forget a member (call before its socket closes); returns the packets it sent."""
        with self.lock:
            return self._unregister(member)

    def _unregister(self, member: ClockMember) -> int:
        slot = member._slot
        sent = 0
        if 0 <= slot < len(self._members) and self._members[slot] is member:
            self._members[slot] = None
            self._live -= 1
            self._freed.append(slot)
            sent = int(self._txn[slot])
            if self._link is not None:
                # the port is free once the sender has closed its copy of the socket too
                member._released = self._link.forget(slot, int(self._gen[slot]))
            if self._epoll is not None:
                fd = member.fileno()
                if self._by_fd.pop(fd, None) is not None:
                    with contextlib.suppress(OSError, ValueError):
                        self._epoll.unregister(fd)
        member._slot = -1
        return sent

    def configure(self, member: ClockMember, payload_type: int) -> None:
        """The member's audio payload type changed (a new talkspurt starts)."""
        with self.lock:
            slot = member._slot
            if slot >= 0:
                self._pt[slot] = payload_type
                self._alaw[slot] = payload_type == g711.PCMA
                self._mark[slot] = True

    def sent(self, member: ClockMember) -> int:
        slot = member._slot
        return int(self._txn[slot]) if slot >= 0 else 0

    def level(self, member: ClockMember) -> float:
        slot = member._slot
        return float(self._level[slot]) if slot >= 0 else 0.0

    def sender_state(self, slot: int) -> tuple[int, int, bool]:
        """(next sequence number, this frame's timestamp, marker pending) of a slot (inside a tick)."""
        return int(self._seq[slot]), int(self._ts[slot]), bool(self._mark[slot])

    def set_sender_state(self, slot: int, seq: int, mark: bool) -> None:
        self._seq[slot] = seq & 0xFFFF
        self._mark[slot] = mark

    def add_mixer(self, mixer: ClockMixer) -> None:
        with self.lock:
            if mixer not in self._mixers:
                self._mixers.append(mixer)

    def remove_mixer(self, mixer: ClockMixer) -> None:
        with self.lock:
            if mixer in self._mixers:
                self._mixers.remove(mixer)

    # -- the thread

    def _run(self) -> None:
        _take_rt_priority()
        start = time.monotonic()
        k = 0
        try:
            while True:
                k += 1
                deadline = start + k * self.period
                try:
                    if self._wait_until(deadline):
                        return
                except Exception:  # a send failed in a way _send_group does not expect
                    log.exception("media clock send failed")
                now = time.monotonic()
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
                with self.lock:
                    try:
                        self.tick(now, deadline)
                    except Exception:  # never let one bad frame stop every call's media
                        log.exception("media tick failed")
                self._hand_over()
        finally:
            with self.lock:
                self._flush_pending()
            self._hand_over()

    def _wait_until(self, t: float) -> bool:
        """Sleep until ``t``, sending the phase groups that fall due meanwhile; True on stop."""
        due = self._due
        while True:
            if due and due[0][0] <= time.monotonic():
                # under the lock: a session the event loop is closing is either still
                # registered (and its socket open) or already gone from the members
                with self.lock:
                    self._send_due()
            now = time.monotonic()
            if now >= t:
                return self._stop.is_set()
            wake = min(t, due[0][0]) if due else t
            if self._stop.wait(wake - now):
                return True

    def _hand_over(self) -> None:
        """Give the event loop what this tick queued with call_soon, in one wake-up."""
        calls, self._calls = self._calls, []
        loop = self._loop
        if not calls or loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is left to receive them
            loop.call_soon_threadsafe(_run_calls, calls)

    def _flush_pending(self) -> None:
        # phase groups of the previous frame that have not left yet go now, in order,
        # before the rows they read are written again
        due, self._due = self._due, []
        for _, group in due:
            self._send_group(group)

    def _drain(self, now: float, rounds: int = MAX_ROUNDS) -> None:
        ep = self._epoll
        if ep is None:
            for m in self._members:
                if m is not None:
                    m._drain(now)
            return
        by_fd = self._by_fd
        for _ in range(rounds):
            ready = ep.poll(0)
            if not ready:
                return
            for i, (fd, _ev) in enumerate(ready):
                m = by_fd.get(fd)
                if m is not None:
                    m._read_one(now)
                if not i & 127 and self._due:
                    self._send_due()
        self.rx_rounds_capped += 1

    def _start_sends(self, base: float) -> None:
        """Send the frame prepared by the previous tick: phase 0 now, the others when due.

        Sending one tick behind (20 ms of added latency) makes the moment each
        packet leaves independent of how long this tick's own work takes: the
        work below stops at checkpoints to send groups that fall due meanwhile.
        """
        prepared, self._prepared = self._prepared, None
        if prepared is None:
            return
        views, groups, slow_groups = prepared
        step = self.period / PHASE_SLOTS
        for i in range(PHASE_SLOTS):
            if groups[i] or slow_groups[i]:
                self._due.append((base + i * step, _Group(views, groups[i], slow_groups[i])))
        self._send_due()

    def _send_due(self) -> None:
        due = self._due
        if not due:
            return
        t = time.monotonic()
        while due and due[0][0] <= t:
            self._send_group(due.pop(0)[1])

    def tick(self, now: float, deadline: float | None = None) -> None:
        """One 20 ms frame for every member; the clock thread runs it holding ``lock``.

        Groups not yet due when it returns leave from the thread's wait for the next deadline
        (or at the start of the next tick).
        """
        t0 = time.perf_counter()
        link = self._link
        if link is not None and link.broken:
            self._link = None
            self.sender_fallbacks += 1
            self.call_soon(link.close)  # reaps the process, off this thread
            link = None
        self._flush_pending()
        if self._freeing or self._freed:
            self._free.extend(self._freeing)
            self._freeing, self._freed = self._freed, []
        self.ticks += 1
        self._start_sends(deadline if deadline is not None else now)
        late = deadline is not None and now - deadline > SLIP
        self._drain(now, LATE_ROUNDS if late else MAX_ROUNDS)
        members = self._members
        n = len(members)
        cap = self._cap
        if self.ticks % TIMEOUT_EVERY == 0:
            for m in members:
                if m is not None:
                    m._check_timeout(now)
        if not self._live:
            # Slots outlive their calls (the arrays keep the high-water mark): with no call left,
            # decoding and DTMF-checking rows of silence is all a tick would do. An idle server
            # spent 6% of a core on that after a burst.
            return

        # ---- one pass over the members: received frame, what to send
        chunks: list[bytes] = []
        odd: list[tuple[int, bytes]] = []
        present_slots: list[int] = []
        tapped: list[int] = []
        tx_slots: list[int] = []
        tx_frames: list[npt.NDArray[np.int16]] = []
        send_slots: list[int] = []
        slow: list[tuple[int, ClockMember, list[bytes]]] = []
        append = chunks.append
        due = self._due
        for slot, m in enumerate(members):
            if m is None:
                append(_SIL_ULAW)
                continue
            if due and not slot & 63:
                self._send_due()
            payload = m._rx_take(now)
            if payload is None:
                append(_SIL_ULAW)
            else:
                present_slots.append(slot)
                if len(payload) == SAMPLES:
                    append(payload)
                else:
                    append(_SIL_ULAW)
                    odd.append((slot, payload))
            if m._taps:
                tapped.append(slot)
            if m._plays:
                frame = m._tx_take(now)
                if frame is not None:
                    tx_slots.append(slot)
                    tx_frames.append(frame)
            if m._dest is not None:
                if link is not None and m._dest is not self._shipped[slot]:
                    self._shipped[slot] = m._dest
                    link.dest(slot, int(self._gen[slot]), m._dest)
                pkts = m._tx_program(self) if m._programs else None
                if pkts is None:
                    send_slots.append(slot)
                else:
                    slow.append((slot, m, pkts))
        if cap > n:
            chunks.extend([_SIL_ULAW] * (cap - n))

        # ---- receive side, all calls at once
        codes = np.frombuffer(b"".join(chunks), np.uint8).reshape(cap, SAMPLES)
        alaw_any = bool(self._alaw.any())
        if odd:
            codes = codes.copy()
            for slot, payload in odd:
                k = min(len(payload), SAMPLES)
                codes[slot, :k] = np.frombuffer(payload, np.uint8, k)
                codes[slot, k:] = g711.silence_code(g711.PCMA if self._alaw[slot] else g711.PCMU)
        rx = g711.ULAW_DECODE[codes]
        present = np.zeros(cap, bool)
        if present_slots:
            present[present_slots] = True
        if alaw_any:
            alaw = self._alaw
            rx[alaw] = g711.ALAW_DECODE[codes[alaw]]
            rx[alaw & ~present] = 0
        self._send_due()  # checkpoints between the stages: none may hold a due group back
        for i, (slot, digit) in enumerate(self._dtmf.process(rx)):
            m = members[slot] if slot < n else None
            if m is not None:
                m._rx_inband(digit, now)
            if due and not i & 31:
                self._send_due()
        self._send_due()
        rxf = rx.astype(np.float32)
        self._level = np.sqrt(np.einsum("ij,ij->i", rxf, rxf) / SAMPLES)
        for i, slot in enumerate(tapped):
            m = members[slot]
            if m is not None:
                m._rx_frame(rx[slot], float(self._level[slot]), now)
            if due and not i & 31:
                self._send_due()
        self._send_due()

        # ---- send side: encode, fill the wire records, send in phase groups
        flip = self._flip = 1 - self._flip
        wire = self._wire[flip]
        send = np.array(send_slots, np.intp)
        payload_col = wire["payload"]
        if self._mixers:
            tx = np.zeros((cap, SAMPLES), np.int32)
            if tx_slots:
                tx[tx_slots] = np.stack(tx_frames)
            for mixer in self._mixers:
                mixer._mix(rx, tx, present)
            out = np.clip(tx[send], -32768, 32767).astype(np.int16)
            payload_col[send] = self._encode(out, send)
        elif send.size:
            silence = np.where(self._alaw[send], g711.silence_code(g711.PCMA), g711.silence_code(g711.PCMU))
            payload_col[send] = silence.astype(np.uint8)[:, None]
            if tx_slots:
                idx = np.array(tx_slots, np.intp)
                frames = np.stack(tx_frames)
                payload_col[idx] = self._encode(frames, idx)  # rows not sent are harmless
        if send.size:
            wire["b1"][send] = self._pt[send] | (self._mark[send].astype(np.uint8) << 7)
            wire["seq"][send] = self._seq[send]
            wire["ts"][send] = self._ts[send]
            self._seq[send] += 1
            self._mark[send] = False
            self._txn[send] += 1
        self._ts[:n] += SAMPLES  # every stream's clock moves on, sending or not

        groups: list[list[int]] = [[] for _ in range(PHASE_SLOTS)]
        if send.size:
            phases = self._phase[send]
            order = np.argsort(phases, kind="stable")
            counts = np.bincount(phases, minlength=PHASE_SLOTS)
            ordered = send[order].tolist()
            pos = 0
            for i in range(PHASE_SLOTS):
                c = int(counts[i])
                groups[i] = ordered[pos : pos + c]
                pos += c
        slow_groups: list[list[tuple[ClockMember, list[bytes]]]] = [[] for _ in range(PHASE_SLOTS)]
        for slot, m, pkts in slow:
            if pkts:
                slow_groups[int(self._phase[slot])].append((m, pkts))
        # this frame leaves at the start of the next tick
        base = (deadline if deadline is not None else now) + self.period
        if link is None or not self._ship(link, base, wire, groups, slow_groups):
            self._prepared = (self._views[flip], groups, slow_groups)
        self._send_due()
        self.tick_cost = time.perf_counter() - t0
        self.max_tick_cost = max(self.max_tick_cost, self.tick_cost)

    def _ship(self, link: SenderLink, base: float, wire: npt.NDArray[np.void], groups: list[list[int]],
              slow_groups: list[list[tuple[ClockMember, list[bytes]]]]) -> bool:
        """Hand the frame to the sender process, each phase group with the time it is due."""
        raw = wire.view(np.uint8).reshape(self._cap, PACKET)
        step = self.period / PHASE_SLOTS
        for i in range(PHASE_SLOTS):
            due = base + i * step
            if groups[i]:
                ids = np.array(groups[i], "<u4")
                if not link.ship(group_message(due, ids.tobytes(), self._gen[ids].astype("<u4").tobytes(),
                                               raw[ids].tobytes())):
                    return False
            for m, pkts in slow_groups[i]:
                if not link.ship(slow_message(due, m._slot, int(self._gen[m._slot]), pkts)):
                    return False
                m._tx_event_packets += len(pkts)
        return True

    def _encode(self, pcm: npt.NDArray[np.int16], slots: npt.NDArray[np.intp]) -> npt.NDArray[np.uint8]:
        enc = g711.ULAW_ENCODE[pcm.view(np.uint16)]
        alaw = self._alaw[slots]
        if alaw.any():
            enc[alaw] = g711.ALAW_ENCODE[pcm[alaw].view(np.uint16)]
        return enc

    def _send_group(self, group: _Group) -> None:
        if group.done:
            return
        group.done = True
        members = self._members
        views = group.views
        for slot in group.slots:
            m = members[slot]
            if m is None:  # closed since the tick (its slot is not reused before the next one)
                continue
            dest = m._dest
            if dest is None:
                continue
            try:
                m._sendto(views[slot], dest)
            except OSError:  # a full socket buffer or an unreachable peer: this frame is lost
                m._send_errors += 1
        for m, pkts in group.slow:
            m._tx_send(pkts)


class _Group:
    """The packets of one send phase of one tick."""

    __slots__ = ("views", "slots", "slow", "done")

    def __init__(self, views: list[memoryview], slots: list[int],
                 slow: list[tuple[ClockMember, list[bytes]]]) -> None:
        self.views = views
        self.slots = slots
        self.slow = slow
        self.done = False


def _run_calls(calls: list[tuple[Callable[..., object], tuple[Any, ...]]]) -> None:
    """On the event loop: what one tick handed over, in order; one failure does not stop the rest."""
    for fn, args in calls:
        try:
            fn(*args)
        except Exception:
            log.exception("media clock hand-over to %r failed", fn)


_switch_lock = threading.Lock()
_switch_users = 0
_switch_saved = 0.005


def _switch_interval_users(delta: int) -> None:
    """Lower the interpreter's switch interval while any clock thread runs, restore it after.

    It is process-wide, hence counted: a process may run one clock per event loop (tests).
    """
    global _switch_users, _switch_saved
    with _switch_lock:
        if _switch_users == 0 and delta > 0:
            _switch_saved = sys.getswitchinterval()
            sys.setswitchinterval(min(_switch_saved, SWITCH_INTERVAL))
        _switch_users = max(0, _switch_users + delta)
        if _switch_users == 0 and delta < 0:
            sys.setswitchinterval(_switch_saved)


# Send from a process of its own (ringback/media/sender.py) when the platform allows;
# `ringback serve --media-sender off` keeps sending in the clock's thread.
_use_sender = True


def set_media_sender(enabled: bool) -> None:
    """Use (or not) the media sender process for clocks started from now on."""
    global _use_sender
    _use_sender = bool(enabled)


# Real-time priority for the clock's thread (`ringback serve --rt-priority N`); 0 leaves it as is.
_rt_priority = 0


def set_rt_priority(priority: int) -> None:
    """Ask for SCHED_RR at `priority` (1-99) for clock threads started from now on."""
    global _rt_priority
    _rt_priority = max(0, min(99, int(priority)))


def _take_rt_priority() -> None:
    # On Linux the call applies to the calling thread only: the clock gets the CPU before call
    # set-up and the API, and nothing else in the process is promoted.
    if not _rt_priority or not hasattr(os, "sched_setscheduler"):
        return
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(_rt_priority))
    except OSError as exc:  # no CAP_SYS_NICE / RLIMIT_RTPRIO: keep running at normal priority
        log.warning("media clock: real-time priority %d refused (%s); running at normal priority",
                    _rt_priority, exc)
