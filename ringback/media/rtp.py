"""RTP (RFC 3550), sans-IO: packet codec, sender state, receiver with a jitter buffer.

Nothing here touches sockets or clocks: callers pass bytes in and the current
monotonic time (seconds) where timing matters.
"""

from __future__ import annotations

import secrets
import struct
from collections import deque
from dataclasses import dataclass, field

RTP_VERSION = 2
HEADER = struct.Struct("!BBHII")
_UNPACK = HEADER.unpack_from
FRAME_SAMPLES = 160  # 20 ms at 8 kHz
FRAME_SECONDS = 0.02
SEQ_MOD = 1 << 16
TS_MOD = 1 << 32


@dataclass(slots=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension: tuple[int, bytes] | None = None  # (profile-defined 16 bits, data; len % 4 == 0)
    padding: int = 0  # number of padding bytes to append (0 = none)

    def serialize(self) -> bytes:
        if not 0 <= self.payload_type < 128:
            raise ValueError("payload type out of range")
        if len(self.csrc) > 15:
            raise ValueError("at most 15 CSRCs")
        b0 = (RTP_VERSION << 6) | len(self.csrc)
        if self.padding:
            b0 |= 0x20
        if self.extension is not None:
            b0 |= 0x10
        b1 = (0x80 if self.marker else 0) | self.payload_type
        parts = [HEADER.pack(b0, b1, self.sequence % SEQ_MOD, self.timestamp % TS_MOD, self.ssrc & 0xFFFFFFFF)]
        parts.extend(struct.pack("!I", c & 0xFFFFFFFF) for c in self.csrc)
        if self.extension is not None:
            profile, data = self.extension
            if len(data) % 4:
                raise ValueError("extension data must be a multiple of 4 bytes")
            parts.append(struct.pack("!HH", profile & 0xFFFF, len(data) // 4) + data)
        parts.append(self.payload)
        if self.padding:
            if not 1 <= self.padding <= 255:
                raise ValueError("padding must be 1..255 bytes")
            parts.append(b"\x00" * (self.padding - 1) + bytes([self.padding]))
        return b"".join(parts)


def is_rtcp(data: bytes) -> bool:
    """RTCP multiplexed on the RTP port (RFC 5761): packet types 192-223 in byte 1."""
    return len(data) >= 2 and (data[0] >> 6) == RTP_VERSION and 192 <= data[1] <= 223


def parse_rtp(data: bytes) -> RtpPacket | None:
    """Parse one RTP packet; returns None for anything malformed (never raises)."""
    n = len(data)
    if n < HEADER.size:
        return None
    b0, b1, seq, ts, ssrc = HEADER.unpack_from(data)
    if (b0 >> 6) != RTP_VERSION or is_rtcp(data):
        return None
    cc = b0 & 0x0F
    pos = HEADER.size + 4 * cc
    if pos > n:
        return None
    csrc = struct.unpack_from(f"!{cc}I", data, HEADER.size) if cc else ()
    extension = None
    if b0 & 0x10:
        if pos + 4 > n:
            return None
        profile, words = struct.unpack_from("!HH", data, pos)
        end = pos + 4 + 4 * words
        if end > n:
            return None
        extension = (profile, bytes(data[pos + 4 : end]))
        pos = end
    end = n
    padding = 0
    if b0 & 0x20:
        padding = data[-1]
        if padding == 0 or pos + padding > n:
            return None
        end = n - padding
    return RtpPacket(
        payload_type=b1 & 0x7F,
        sequence=seq,
        timestamp=ts,
        ssrc=ssrc,
        payload=bytes(data[pos:end]),
        marker=bool(b1 & 0x80),
        csrc=tuple(csrc),
        extension=extension,
        padding=padding,
    )


class RtpSender:
    """Outgoing stream state: random initial SSRC/sequence/timestamp (RFC 3550 §5.1).

    ``timestamp`` is the media clock of the current frame; ``advance()`` moves it
    by one frame per tick whether or not audio was sent, so events and silence
    keep the timeline.
    """

    def __init__(
        self,
        payload_type: int,
        *,
        ssrc: int | None = None,
        sequence: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        self.payload_type = payload_type
        self.ssrc = secrets.randbits(32) if ssrc is None else ssrc
        self.sequence = secrets.randbits(16) if sequence is None else sequence % SEQ_MOD
        self.timestamp = secrets.randbits(32) if timestamp is None else timestamp % TS_MOD
        self.packets_sent = 0
        self.octets_sent = 0
        self._talkspurt = True  # the first packet starts a talkspurt

    def start_talkspurt(self) -> None:
        """Mark the next audio packet (after a pause in sending)."""
        self._talkspurt = True

    def packet(
        self,
        payload: bytes,
        *,
        payload_type: int | None = None,
        timestamp: int | None = None,
        marker: bool | None = None,
    ) -> bytes:
        """Serialise the next packet (consumes one sequence number, not timestamp)."""
        if marker is None:
            marker = self._talkspurt
            self._talkspurt = False
        pkt = RtpPacket(
            payload_type=self.payload_type if payload_type is None else payload_type,
            sequence=self.sequence,
            timestamp=self.timestamp if timestamp is None else timestamp,
            ssrc=self.ssrc,
            payload=payload,
            marker=marker,
        )
        self.sequence = (self.sequence + 1) % SEQ_MOD
        self.packets_sent += 1
        self.octets_sent += len(payload)
        return pkt.serialize()

    def advance(self, samples: int = FRAME_SAMPLES) -> None:
        self.timestamp = (self.timestamp + samples) % TS_MOD

    def audio(self, payload: bytes) -> bytes:
        """One audio frame at the current timestamp, then advance by its length."""
        # hot path (every call, every 20 ms): pack the fixed header directly
        b1 = self.payload_type | (0x80 if self._talkspurt else 0)
        self._talkspurt = False
        data = HEADER.pack(0x80, b1, self.sequence, self.timestamp, self.ssrc) + payload
        self.sequence = (self.sequence + 1) % SEQ_MOD
        self.timestamp = (self.timestamp + len(payload)) % TS_MOD
        self.packets_sent += 1
        self.octets_sent += len(payload)
        return data


@dataclass(slots=True)
class ReceiverStats:
    received: int = 0  # valid packets accepted from the current source
    lost: int = 0  # expected - received (RFC 3550 A.3), never negative
    late: int = 0  # arrived after their playout time
    duplicates: int = 0
    concealed: int = 0  # frames filled by concealment
    underruns: int = 0
    drift_drops: int = 0  # frames dropped to bring the buffer back to its target
    malformed: int = 0
    ssrc_changes: int = 0
    jitter: float = 0.0  # RFC 3550 interarrival jitter, in seconds

    def as_dict(self) -> dict[str, float | int]:
        return {k: getattr(self, k) for k in self.__slots__}  # type: ignore[attr-defined]


@dataclass(slots=True)
class _Entry:
    payload_type: int
    payload: bytes | None  # None: a placeholder (telephone-event, comfort noise) played as silence


@dataclass(slots=True)
class _SeqTracker:
    base: int = -1
    max_ext: int = -1
    cycles: int = 0
    max_seq: int = 0

    def extend(self, seq: int) -> int:
        if self.base < 0:
            self.base = self.max_ext = seq
            self.max_seq = seq
            return seq
        delta = (seq - self.max_seq) % SEQ_MOD
        if delta < 0x8000:
            if seq < self.max_seq:
                self.cycles += SEQ_MOD
            self.max_seq = seq
            ext = self.cycles + seq
            self.max_ext = max(self.max_ext, ext)
            return ext
        ext = self.cycles + seq - (SEQ_MOD if seq > self.max_seq else 0)
        return ext


class JitterBuffer:
    """Reorders by sequence number and releases one packet per 20 ms tick.

    Fixed target depth (``depth`` seconds before playout starts or restarts after
    an underrun). Clock drift is absorbed both ways: a sender that is slower
    than our clock underruns and rebuffers (adds a frame); one that is faster
    keeps the buffer above target, and a frame is dropped once the minimum fill
    over ``drift_window`` ticks stays above it.
    """

    def __init__(
        self,
        *,
        depth: float = 0.06,
        max_packets: int = 50,
        conceal: str = "repeat",
        drift_window: int = 50,
    ) -> None:
        if conceal not in ("repeat", "silence"):
            raise ValueError("conceal must be 'repeat' or 'silence'")
        self.depth = depth
        self.depth_frames = max(1, round(depth / FRAME_SECONDS))
        self.max_packets = max_packets
        self.conceal = conceal
        self.drift_window = drift_window
        self.stats = ReceiverStats()
        self._packets: dict[int, _Entry] = {}
        self._next: int | None = None  # next extended sequence number to play
        self._play_at: float | None = None  # when buffering ends
        self._playing = False
        self._last: _Entry | None = None
        self._concealed_run = 0
        self._played: deque[int] = deque(maxlen=64)
        self._min_fill = 1 << 30
        self._window_ticks = 0

    def reset(self) -> None:
        self._packets.clear()
        self._next = None
        self._play_at = None
        self._playing = False
        self._last = None
        self._played.clear()

    def __len__(self) -> int:
        return len(self._packets)

    def push(self, ext_seq: int, payload_type: int, payload: bytes | None, now: float) -> None:
        if self._next is not None and ext_seq < self._next:
            if ext_seq in self._played:
                self.stats.duplicates += 1
            else:
                self.stats.late += 1
            return
        if ext_seq in self._packets:
            self.stats.duplicates += 1
            return
        if self._next is not None and ext_seq - self._next > self.max_packets:
            # a jump far ahead (sender restarted its sequence): start over from here
            self.reset()
        if len(self._packets) >= self.max_packets:
            oldest = min(self._packets)
            if oldest > ext_seq:
                self.stats.late += 1
                return
            del self._packets[oldest]
            self.stats.drift_drops += 1
        self._packets[ext_seq] = _Entry(payload_type, payload)
        if not self._playing and self._play_at is None:
            self._play_at = now + self.depth

    def pop(self, now: float) -> tuple[int, bytes | None] | None:
        """The packet due at this tick: (payload type, payload) or None for silence.

        A payload of None with a payload type is a placeholder frame (silence);
        a concealed frame repeats the previous payload once, then goes silent.
        """
        if not self._playing:
            if self._play_at is None or now + 1e-9 < self._play_at or not self._packets:
                return None
            self._playing = True
            start = min(self._packets)
            self._next = start if self._next is None else max(self._next, start)
        assert self._next is not None
        entry = self._packets.pop(self._next, None)
        if entry is None:
            if not self._packets:
                # nothing buffered: underrun, rebuild the target depth before playing again
                self.stats.underruns += 1
                self._playing = False
                self._play_at = None
                return None
            # a hole with later packets behind it: this frame is lost
            self._played.append(self._next)
            self._next += 1
            self.stats.concealed += 1
            self._concealed_run += 1
            if self.conceal == "repeat" and self._concealed_run == 1 and self._last is not None:
                return (self._last.payload_type, self._last.payload)
            return None
        self._played.append(self._next)
        self._next += 1
        self._concealed_run = 0
        self._last = entry
        self._track_fill()
        return (entry.payload_type, entry.payload)

    def _track_fill(self) -> None:
        fill = len(self._packets)
        self._min_fill = min(self._min_fill, fill)
        self._window_ticks += 1
        if self._window_ticks < self.drift_window:
            return
        if self._min_fill > self.depth_frames and self._next is not None:
            # the sender's clock runs fast: drop the oldest frame to hold latency
            self._packets.pop(self._next, None)
            self._played.append(self._next)
            self._next += 1
            self.stats.drift_drops += 1
        self._min_fill = 1 << 30
        self._window_ticks = 0


@dataclass(slots=True)
class _Source:
    ssrc: int
    seq: _SeqTracker = field(default_factory=_SeqTracker)
    transit: float | None = None
    received: int = 0


class RtpReceiver:
    """Parses datagrams of one stream, keeps RFC 3550 statistics and feeds the jitter buffer.

    Packets whose payload type is in ``audio_pts`` carry audio; any other payload
    type (telephone-event, comfort noise) takes its place in the buffer as a
    silent placeholder, so sequence gaps stay meaningful, and is returned to the
    caller for its own decoder.
    """

    def __init__(self, audio_pts: set[int] | frozenset[int] = frozenset({0, 8}), *, clock_rate: int = 8000,
                 jitter: JitterBuffer | None = None) -> None:
        self.audio_pts = frozenset(audio_pts)
        self.clock_rate = clock_rate
        self.buffer = jitter if jitter is not None else JitterBuffer()
        self._src: _Source | None = None

    @property
    def stats(self) -> ReceiverStats:
        return self.buffer.stats

    @property
    def ssrc(self) -> int | None:
        return self._src.ssrc if self._src else None

    def receive(self, data: bytes, now: float) -> RtpPacket | None:
        pkt = parse_rtp(data)
        if pkt is None:
            if not is_rtcp(data):
                self.stats.malformed += 1
            return None
        self._accept(pkt.payload_type, pkt.sequence, pkt.timestamp, pkt.ssrc, pkt.payload, now)
        return pkt

    def feed(self, data: bytes, now: float) -> tuple[int, int, bytes] | None:
        """Like receive() but returns only (payload type, timestamp, payload).

        The hot path of the media engine (every packet of every call): a plain
        12-byte header, as every G.711 sender sends, is unpacked in place
        without building an RtpPacket; anything else goes through parse_rtp.
        """
        if len(data) >= 12 and data[0] == 0x80:
            b0, b1, seq, ts, ssrc = _UNPACK(data)
            if 192 <= b1 <= 223:  # RTCP multiplexed on the port (RFC 5761)
                return None
            pt = b1 & 0x7F
            payload = data[12:]
            self._accept(pt, seq, ts, ssrc, payload, now)
            return pt, ts, payload
        pkt = self.receive(data, now)
        return None if pkt is None else (pkt.payload_type, pkt.timestamp, pkt.payload)

    def _accept(self, pt: int, sequence: int, timestamp: int, ssrc: int, payload: bytes, now: float) -> None:
        src = self._src
        if src is None or src.ssrc != ssrc:
            if src is not None:
                self.stats.ssrc_changes += 1
            src = self._src = _Source(ssrc)
            self.buffer.reset()
        ext = src.seq.extend(sequence)
        src.received += 1
        st = self.stats
        st.received += 1
        # RFC 3550 A.8 interarrival jitter, kept in seconds
        transit = now - timestamp / self.clock_rate
        if src.transit is not None:
            d = abs(transit - src.transit)
            if d < 1000:  # ignore timestamp wraps
                st.jitter += (d - st.jitter) / 16
        src.transit = transit
        expected = src.seq.max_ext - src.seq.base + 1
        st.lost = max(0, expected - src.received)
        self.buffer.push(ext, pt, payload if pt in self.audio_pts else None, now)

    def pop(self, now: float) -> tuple[int, bytes | None] | None:
        return self.buffer.pop(now)
