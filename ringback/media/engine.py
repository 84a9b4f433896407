"""The media engine: RTP sessions on UDP ports, driven by the shared media clock.

This is the interface the call engine, the TwiML interpreter and the sandbox
phones use. Sessions are thin asyncio adapters around the sans-IO pieces
(rtp, rfc4733, dtmf) and the batch work done by ``clock.MediaClock``, which
runs in a thread of its own: the public methods here are for the event loop's
thread, the ``_``-prefixed hooks for the clock's (its docstring says what
crosses between them and how).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from ringback.media import dtmf as dtmf_mod
from ringback.media import g711
from ringback.media.clock import PERIOD, PHASE_SLOTS, SAMPLES, MediaClock
from ringback.media.rfc4733 import EVENTS, EventDecoder, event_packets
from ringback.media.rtp import HEADER, SEQ_MOD, TS_MOD, JitterBuffer, RtpReceiver, RtpSender

log = logging.getLogger(__name__)

Tap = Callable[[npt.NDArray[np.int16], float], None]

DIGIT_DEDUP_WINDOW = 0.5  # seconds: the same digit heard in-band and by RFC 4733 counts once
RELATCH_AFTER = 0.5  # seconds of silence from the latched source before another may take over
EVENT_DURATION = 0.1  # seconds per RFC 4733 digit
EVENT_GAP = 0.1  # seconds between RFC 4733 digits
RCVBUF = 32 * 1024  # bytes asked for each RTP socket's receive buffer (Linux doubles it)
RELEASE_TIMEOUT = 1.0  # seconds close() waits for the media sender to let the port go


class NoPortAvailable(RuntimeError):
    """Every port in the RTP range is busy."""


@dataclass(eq=False)
class _Play:
    pcm: npt.NDArray[np.int16]
    future: asyncio.Future[str | None]
    interruptible: bool
    pos: int = 0


@dataclass(eq=False)
class _Program:
    """RFC 4733 digits being sent: per tick, None (send audio) or event packets."""

    ticks: list[list[tuple[bytes, int, bool]] | None]
    starts: set[int]  # tick indexes where a new event timestamp begins
    future: asyncio.Future[None]
    index: int = 0
    event_ts: int = 0


@dataclass
class _DigitLog:
    source: str
    digit: str
    at: float
    matched: bool = False


class RtpSession:
    """One RTP stream pair on one local UDP port.

    The socket is used raw and non-blocking, without an asyncio transport: the
    media clock reads it (one epoll for all sessions, once per tick) and writes
    it (one sendto per frame, in this session's phase of the 20 ms).

    Which thread owns what: the receiver, event decoder, latching and
    ``last_rx`` belong to the clock thread; digits, their waiters and log, the
    taps list and every future belong to the event loop; the remote address is
    changed under the clock's lock; ``_plays`` and ``_programs`` are appended
    by the loop only and popped by the clock only.
    """

    def __init__(self, engine: MediaEngine, sock: socket.socket, local_host: str, local_port: int) -> None:
        self._engine = engine
        self._clock = engine.clock
        self._loop = asyncio.get_running_loop()
        self._sock = sock
        # bound methods looked up once: they run for every packet of the call
        self._sendto = sock.sendto
        self._recvfrom = sock.recvfrom
        self._dest: tuple[str, int] | None = None  # where packets go: the latched source, else the SDP's
        self.local_host = local_host
        self.local_port = local_port
        self.remote: tuple[str, int] | None = None
        self.payload_type = g711.PCMU
        self.telephone_event_pt: int | None = None
        self._alaw = False
        self._sender = RtpSender(g711.PCMU)
        self._phase = zlib.crc32(self._sender.ssrc.to_bytes(4, "big")) % PHASE_SLOTS
        self._slot = -1
        self._receiver = RtpReceiver({0, 8}, jitter=JitterBuffer(depth=engine.jitter_depth))
        self._events = EventDecoder()
        self._latched: tuple[str, int] | None = None
        self._latched_at = 0.0
        self._plays: deque[_Play] = deque()
        self._programs: deque[_Program] = deque()
        self._digits: deque[str] = deque()
        self._digit_waiters: list[asyncio.Future[None]] = []
        self._digit_log: deque[_DigitLog] = deque(maxlen=16)
        self._taps: list[Tap] = []
        self.on_rtp_timeout: Callable[[], None] | None = None
        self._timeout_armed = False
        self._timeout_fired = False
        self.last_rx = time.monotonic()  # the clock's time base
        self._send_errors = 0
        self._rx_errors = 0
        self._tx_packets = 0  # audio rows sent before close (counted by the event loop)
        self._tx_event_packets = 0  # RFC 4733 packets (counted by the clock thread)
        self._released: asyncio.Future[None] | None = None  # the media sender's copy of the socket closed
        self._rx_datagrams = 0
        self._rx_foreign = 0
        self._digits_in = {"rfc4733": 0, "inband": 0, "info": 0, "duplicate": 0}
        self._closed = False

    # ---- public API

    @property
    def closed(self) -> bool:
        return self._closed

    def fileno(self) -> int:
        return self._sock.fileno()

    @property
    def rx_level(self) -> float:
        """RMS of the last received frame."""
        clock = self._engine._clock
        return clock.level(self) if clock is not None and self._slot >= 0 else 0.0

    def set_remote(self, host: str, port: int, payload_type: int, telephone_event_pt: int | None) -> None:
        if payload_type not in (g711.PCMU, g711.PCMA):
            raise ValueError(f"unsupported audio payload type {payload_type}")
        with self._clock.lock:  # a tick sees the old remote or the new one, never half of each
            self.remote = (host, port)
            self._latched = None
            self._dest = self.remote
            if payload_type != self.payload_type:
                self._sender.payload_type = payload_type
                if self._slot >= 0:
                    self._clock.configure(self, payload_type)
            self.payload_type = payload_type
            self._alaw = payload_type == g711.PCMA
            self.telephone_event_pt = telephone_event_pt
            self.last_rx = time.monotonic()
            self._timeout_armed = True
            self._timeout_fired = False
            if self._slot < 0 and not self._closed:
                # A session joins the clock once it knows where its media goes: a call still
                # ringing (or never answered: busy, no answer) costs the clock nothing. Packets
                # that arrive earlier wait in the socket's buffer.
                self._clock.register(self)

    async def play(self, pcm: npt.ArrayLike, *, interruptible: bool = False) -> str | None:
        """Queue int16 8 kHz audio; returns once it has all been sent.

        Cancelling the awaiting task stops this audio at the next frame. With
        ``interruptible`` the first received digit (or one already waiting)
        stops it and is returned; the digit stays available to next_digit().
        """
        if self._closed:
            return None
        if interruptible and self._digits:
            return self._digits[0]
        fut: asyncio.Future[str | None] = self._loop.create_future()
        item = _Play(np.asarray(pcm, dtype=np.int16).reshape(-1), fut, interruptible)
        if item.pcm.size == 0:
            return None
        self._plays.append(item)
        try:
            return await fut
        finally:
            if not fut.done():
                fut.cancel()  # the clock drops it at its next frame

    def stop_playback(self) -> None:
        for item in tuple(self._plays):  # the clock pops the completed items
            if not item.future.done():
                item.future.set_result(None)

    @property
    def playing(self) -> bool:
        return any(not item.future.done() for item in tuple(self._plays))

    async def send_digits(self, digits: str) -> None:
        """Send 0-9 * # A-D ('w' = 0.5 s pause, 'W' = 1 s): RFC 4733 if negotiated, else in-band."""
        for d in digits:
            if d not in "wW" and d.upper() not in EVENTS:
                raise ValueError(f"not a DTMF digit: {d!r}")
        if not digits or self._closed:
            return
        if self.telephone_event_pt is None:
            # same cadence as the events: a 50 ms tone (the Q.24 minimum plus 10 ms) loses a
            # digit to one lost 20 ms packet; 100 ms survives one (tests/media/test_bad_network.py)
            await self.play(dtmf_mod.tones(digits, on_ms=EVENT_DURATION * 1000, off_ms=EVENT_GAP * 1000))
            return
        ticks: list[list[tuple[bytes, int, bool]] | None] = []
        starts: set[int] = set()
        for d in digits:
            if d in "wW":
                ticks.extend([None] * round((0.5 if d == "w" else 1.0) / PERIOD))
                continue
            base = len(ticks)
            starts.add(base)
            for p in event_packets(d.upper(), EVENT_DURATION):
                i = base + round(p.at / PERIOD)
                while len(ticks) <= i:
                    ticks.append([])
                slot = ticks[i]
                if slot is None:
                    slot = ticks[i] = []
                slot.append((p.payload, p.ts_offset, p.marker))
            # audio-free gap so that consecutive equal digits stay distinct
            ticks.extend([[] for _ in range(round(EVENT_GAP / PERIOD))])
        fut: asyncio.Future[None] = self._loop.create_future()
        prog = _Program(ticks, starts, fut)
        self._programs.append(prog)
        try:
            await fut
        finally:
            if not fut.done():
                fut.cancel()  # the clock drops it at its next frame

    async def next_digit(self, timeout: float | None) -> str | None:
        """The next received digit, or None after ``timeout`` seconds (or on close)."""
        deadline = None if timeout is None else self._loop.time() + timeout
        while not self._digits:
            if self._closed:
                return None
            remaining = None if deadline is None else deadline - self._loop.time()
            if remaining is not None and remaining <= 0:
                return None
            waiter: asyncio.Future[None] = self._loop.create_future()
            self._digit_waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, remaining)
            except TimeoutError:
                return None
            finally:
                with contextlib.suppress(ValueError):
                    self._digit_waiters.remove(waiter)
        return self._digits.popleft()

    def inject_digit(self, digit: str) -> None:
        """A digit from SIP INFO."""
        if len(digit) == 1 and digit.upper() in EVENTS:
            self._digits_in["info"] += 1
            self._deliver(digit.upper())

    def flush_digits(self) -> None:
        self._digits.clear()

    def add_tap(self, fn: Tap) -> Callable[[], None]:
        self._taps.append(fn)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._taps.remove(fn)

        return remove

    @property
    def stats(self) -> dict[str, object]:
        rx = self._receiver.stats.as_dict()
        clock = self._engine._clock
        tx = self._tx_packets + self._tx_event_packets + (clock.sent(self) if clock is not None and self._slot >= 0 else 0)
        return {
            "local": f"{self.local_host}:{self.local_port}",
            "remote": f"{self.remote[0]}:{self.remote[1]}" if self.remote else None,
            "latched": f"{self._latched[0]}:{self._latched[1]}" if self._latched else None,
            "payload_type": self.payload_type,
            "telephone_event_pt": self.telephone_event_pt,
            "rx": rx,
            "rx_datagrams": self._rx_datagrams,
            "rx_foreign": self._rx_foreign,
            "tx_packets": tx,
            "tx_errors": self._send_errors,
            "rx_errors": self._rx_errors,
            "digits": dict(self._digits_in),
        }

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._engine._forget(self)
        self.stop_playback()
        for prog in tuple(self._programs):
            if not prog.future.done():
                prog.future.set_result(None)
        for w in self._digit_waiters:
            if not w.done():
                w.set_result(None)
        self._taps.clear()
        # unregistered (in _forget) before closing, so the clock's epoll never sees a dead fd;
        # the port is free when this returns
        self._sock.close()
        released, self._released = self._released, None
        if released is not None:
            try:
                await asyncio.wait_for(released, RELEASE_TIMEOUT)
            except TimeoutError:  # the sender is stuck: stop using it, so no other close waits
                link = self._clock.sender
                if link is not None:
                    link.fail(f"it did not close a socket within {RELEASE_TIMEOUT} s")

    # ---- receive path (called by the clock once per tick, for sockets epoll says are ready)

    def _read_one(self, now: float) -> bool:
        """Read and handle one datagram; False when the socket had none (or failed)."""
        try:
            data, addr = self._recvfrom(2048)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            self._rx_errors += 1
            return False
        self._on_datagram(data, addr, now)
        return True

    def _drain(self, now: float) -> None:
        """Everything queued on the socket (used where there is no epoll)."""
        while not self._closed and self._read_one(now):
            pass

    def _on_datagram(self, data: bytes, addr: tuple[str, int], now: float) -> None:
        self._rx_datagrams += 1
        source = addr[:2]  # IPv6 addresses carry flow info and scope: not part of the identity
        latched = self._latched
        # symmetric RTP: accept a new source only once the latched one went quiet
        # (the address the SDP gave is always welcome back)
        if (latched is not None and source != latched and source != self.remote
                and now - self._latched_at < RELATCH_AFTER):
            self._rx_foreign += 1
            return
        got = self._receiver.feed(data, now)
        if got is None:
            return
        if source != latched:
            self._latched = self._dest = source
        self._latched_at = now
        self.last_rx = now
        pt = got[0]
        if pt <= 8:  # PCMU/PCMA: the common case, nothing more to do per packet
            return
        te = self.telephone_event_pt
        payload = got[2]
        # without a negotiated PT, accept the usual dynamic ones (audio frames are never 4 bytes)
        if pt == te or (te is None and pt in (96, 101, 120) and len(payload) == 4):
            digit = self._events.feed(payload, got[1])
            if digit is not None:
                self._clock.call_soon(self._accept, "rfc4733", digit, now)

    # ---- digits (on the event loop)

    def _accept(self, source: str, digit: str, now: float) -> None:
        self._digits_in[source] += 1
        if self._closed:  # handed over by a tick that ran just before close()
            return
        for entry in reversed(self._digit_log):
            if now - entry.at > DIGIT_DEDUP_WINDOW:
                break
            if entry.source != source and entry.digit == digit and not entry.matched:
                entry.matched = True
                self._digits_in["duplicate"] += 1
                return
        self._digit_log.append(_DigitLog(source, digit, now))
        self._deliver(digit)

    def _deliver(self, digit: str) -> None:
        self._digits.append(digit)
        for w in self._digit_waiters:
            if not w.done():
                w.set_result(None)
        for item in tuple(self._plays):  # the clock drops the interrupted ones
            if item.interruptible and not item.future.done():
                item.future.set_result(digit)

    # ---- clock hooks (called by MediaClock.tick, on the clock thread)

    def _check_timeout(self, now: float) -> None:
        if (self._timeout_armed and not self._timeout_fired and self.on_rtp_timeout is not None
                and now - self.last_rx >= self._engine.rtp_timeout):
            self._timeout_fired = True
            self._clock.call_soon(self._fire_timeout)

    def _fire_timeout(self) -> None:
        cb = self.on_rtp_timeout
        if cb is not None and not self._closed:
            try:
                cb()
            except Exception:
                log.exception("on_rtp_timeout callback failed")

    def _rx_take(self, now: float) -> bytes | None:
        entry = self._receiver.pop(now)
        if entry is None:
            return None
        pt, payload = entry
        if payload is None:
            return None
        if pt != self.payload_type:
            # the peer switched codec without telling us: decode what it sent
            payload = g711.encode(g711.decode(payload, pt), self.payload_type).tobytes()
        return payload

    def _rx_frame(self, pcm: npt.NDArray[np.int16], level: float, now: float) -> None:
        # taps are the application's code: they run on the event loop, with the frame copied
        # out of the tick's matrix
        self._clock.call_soon(self._run_taps, pcm.copy(), now)

    def _run_taps(self, pcm: npt.NDArray[np.int16], now: float) -> None:
        for i, fn in enumerate(list(self._taps)):
            try:
                fn(pcm if i == 0 else pcm.copy(), now)  # each tap gets a frame of its own
            except Exception:
                log.exception("media tap failed")

    def _rx_inband(self, digit: str, now: float) -> None:
        self._clock.call_soon(self._accept, "inband", digit, now)

    def _tx_take(self, now: float) -> npt.NDArray[np.int16] | None:
        while self._plays:
            item = self._plays[0]
            if item.future.done():  # cancelled or interrupted
                self._plays.popleft()
                continue
            frame = item.pcm[item.pos : item.pos + SAMPLES]
            item.pos += SAMPLES
            if item.pos >= len(item.pcm):
                self._plays.popleft()
                # resolved after this frame is handed to the sender, i.e. when sent
                self._clock.call_soon(_resolve, item.future, None)
                if len(frame) < SAMPLES:  # the clock stacks whole frames
                    frame = np.concatenate([frame, np.zeros(SAMPLES - len(frame), np.int16)])
            return frame
        return None

    def _sender_init(self) -> tuple[int, int, int, int]:
        """(sequence, timestamp, SSRC, payload type) the clock's sender arrays start from."""
        s = self._sender
        return s.sequence, s.timestamp, s.ssrc, self.payload_type

    def _tx_program(self, clock: MediaClock) -> list[bytes] | None:
        """This tick's RFC 4733 packets (possibly none), or None to send audio as usual.

        The audio path's sequence numbers and timestamps live in the clock's arrays;
        events take their numbers from there and hand them back.
        """
        programs = self._programs
        while programs[0].future.done():  # cancelled, or the session closed
            programs.popleft()
            if not programs:
                return None
        prog = programs[0]
        if prog.index >= len(prog.ticks):
            programs.popleft()
            self._clock.call_soon(_resolve, prog.future, None)
            return None
        i = prog.index
        prog.index += 1
        step = prog.ticks[i]
        seq, ts, _ = clock.sender_state(self._slot)
        if i in prog.starts:
            prog.event_ts = ts
        if step is None:
            return None
        te = self.telephone_event_pt
        assert te is not None
        pkts = []
        for payload, off, marker in step:
            pkts.append(HEADER.pack(0x80, (0x80 if marker else 0) | te, seq, (prog.event_ts + off) % TS_MOD,
                                    self._sender.ssrc) + payload)
            seq = (seq + 1) % SEQ_MOD
        clock.set_sender_state(self._slot, seq, True)  # audio after the events starts a talkspurt
        if prog.index >= len(prog.ticks):
            programs.popleft()
            self._clock.call_soon(_resolve, prog.future, None)
        return pkts

    def _tx_send(self, packets: list[bytes]) -> None:
        dest = self._dest
        if self._closed or dest is None:
            return
        for pkt in packets:
            try:
                self._sendto(pkt, dest)
            except OSError:
                self._send_errors += 1
        self._tx_event_packets += len(packets)


def _resolve(fut: asyncio.Future[object], value: object) -> None:
    if not fut.done():
        fut.set_result(value)


@dataclass
class _EngineStats:
    opened: int = 0
    closed: int = 0
    port_busy_skips: int = 0
    no_port: int = 0
    extra: dict[str, int] = field(default_factory=dict)


class MediaEngine:
    """Opens RTP sessions on even UDP ports of a range; all share one media clock."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port_range: tuple[int, int] = (20000, 29999),
        *,
        advertise: str | None = None,
        rtp_timeout: float = 60.0,
        jitter_depth: float = 0.06,
    ) -> None:
        lo, hi = port_range
        if lo > hi or lo < 1 or hi > 65535:
            raise ValueError(f"bad RTP port range {port_range}")
        self.host = host
        self.port_range = (lo, hi)
        self.advertise = advertise or host
        self.rtp_timeout = rtp_timeout
        self.jitter_depth = jitter_depth
        self._ports = list(range(lo + (lo % 2), hi + 1, 2))
        if not self._ports:
            raise ValueError(f"no even port in {port_range}")
        self._cursor = 0
        self._sessions: dict[int, RtpSession] = {}
        self._clock: MediaClock | None = None
        self._stats = _EngineStats()

    @property
    def clock(self) -> MediaClock:
        if self._clock is None:
            raise RuntimeError("MediaEngine.start() has not been called")
        return self._clock

    async def start(self) -> None:
        if self._clock is None:
            self._clock = MediaClock.shared()
            self._clock.acquire()

    async def close(self) -> None:
        for s in list(self._sessions.values()):
            await s.close()
        if self._clock is not None:
            clock, self._clock = self._clock, None
            await clock.release()

    async def __aenter__(self) -> MediaEngine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def active_sessions(self) -> int:
        return len(self._sessions)

    @property
    def port_count(self) -> int:
        """How many sessions the port range holds at once (its even ports)."""
        return len(self._ports)

    @property
    def stats(self) -> dict[str, object]:
        return {
            "active_sessions": len(self._sessions),
            "opened": self._stats.opened,
            "closed": self._stats.closed,
            "port_busy_skips": self._stats.port_busy_skips,
            "no_port": self._stats.no_port,
            "clock": self._clock.stats() if self._clock else None,
        }

    async def open_session(self) -> RtpSession:
        """Bind the next free even port of the range (rotating, so a just-closed port rests)."""
        await self.start()
        session = self._open_session()
        if session is None and self._clock is not None and self._clock.sender is not None:
            # ports of closed sessions may still be held by the media sender's copy of their
            # sockets for a moment: wait until it has let them go, then look again
            await self._clock.sender.sync()
            session = self._open_session()
        if session is None:
            self._stats.no_port += 1
            raise NoPortAvailable(f"no free even UDP port in {self.port_range[0]}-{self.port_range[1]}")
        return session

    def _open_session(self) -> RtpSession | None:
        n = len(self._ports)
        for _ in range(n):
            port = self._ports[self._cursor]
            self._cursor = (self._cursor + 1) % n
            if port in self._sessions:
                continue
            sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.setblocking(False)
                # about a second of packets: more is stale audio. When the process falls
                # behind, the kernel drops the excess instead of handing it to a clock that
                # is already late (the default ~200 KiB held six seconds per call)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
                sock.bind((self.host, port))
            except OSError as exc:
                sock.close()
                if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                    self._stats.port_busy_skips += 1
                    continue
                raise
            session = RtpSession(self, sock, self.advertise, port)
            self._sessions[port] = session
            self._stats.opened += 1
            return session
        return None

    def _forget(self, session: RtpSession) -> None:
        if self._sessions.get(session.local_port) is session:
            del self._sessions[session.local_port]
            self._stats.closed += 1
        clock = self._clock
        if clock is not None:
            with clock.lock:  # once this returns, no tick reads the session
                session._tx_packets += clock.unregister(session)
                for mixer in clock.mixers:
                    remove = getattr(mixer, "remove", None)
                    if remove is not None:
                        remove(session)
