"""RFC 4733 telephone-event, sans-IO: payload codec, event packet schedule, decoder."""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

EVENTS = "0123456789*#ABCD"
MAX_DURATION = 0xFFFF  # 16-bit duration field, in timestamp units
END_REPEATS = 3  # the end packet is sent three times (RFC 4733 §2.5.1.4)
_PAYLOAD = struct.Struct("!BBH")


def event_code(digit: str) -> int:
    code = EVENTS.find(digit.upper())
    if code < 0 or len(digit) != 1:
        raise ValueError(f"not a DTMF digit: {digit!r}")
    return code


def event_digit(code: int) -> str | None:
    return EVENTS[code] if 0 <= code < len(EVENTS) else None


@dataclass(slots=True, frozen=True)
class EventPayload:
    event: int
    end: bool
    volume: int  # 0..63, meaning -volume dBm0
    duration: int  # timestamp units since the event's (segment's) timestamp

    def pack(self) -> bytes:
        return _PAYLOAD.pack(self.event & 0xFF, (0x80 if self.end else 0) | (self.volume & 0x3F),
                             min(self.duration, MAX_DURATION))

    @classmethod
    def unpack(cls, data: bytes) -> EventPayload | None:
        if len(data) < 4:
            return None
        event, flags, duration = _PAYLOAD.unpack_from(data)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)


@dataclass(slots=True, frozen=True)
class EventPacket:
    """One packet of an event: send ``at`` seconds after the event starts."""

    at: float
    ts_offset: int  # added to the event's start timestamp (non-zero only for long-event segments)
    marker: bool
    payload: bytes


def event_packets(
    digit: str,
    duration: float = 0.1,
    *,
    volume: int = 10,
    interval: float = 0.05,
    end_spacing: float = 0.02,
    rate: int = 8000,
) -> list[EventPacket]:
    """The packets for one digit: start (marker), updates every ``interval``, end x3.

    Events longer than the 16-bit duration field are split into segments (a new
    timestamp, no marker) as RFC 4733 §2.5.1.3 says. The three end packets are
    spread ``end_spacing`` apart so one burst loss does not take them all.
    """
    code = event_code(digit)
    total = max(1, round(duration * rate))
    step = max(1, round(interval * rate))
    out: list[EventPacket] = []
    seg_start = 0  # samples since event start where the current segment began
    t = 0
    first = True
    while t < total:
        seg_dur = t - seg_start
        if seg_dur > MAX_DURATION:
            # close this segment at the maximum and open the next one
            out.append(EventPacket((seg_start + MAX_DURATION) / rate, seg_start, False,
                                   EventPayload(code, False, volume, MAX_DURATION).pack()))
            seg_start += MAX_DURATION
            seg_dur = t - seg_start
        # the first packet claims one 20 ms frame so receivers that ignore duration 0 see it
        dur = min(rate // 50, total) if first else seg_dur
        out.append(EventPacket(round(t / rate, 6), seg_start, first, EventPayload(code, False, volume, dur).pack()))
        first = False
        t += step
    if total - seg_start > MAX_DURATION:
        out.append(EventPacket((seg_start + MAX_DURATION) / rate, seg_start, False,
                               EventPayload(code, False, volume, MAX_DURATION).pack()))
        seg_start += MAX_DURATION
    end = EventPayload(code, True, volume, total - seg_start).pack()
    out.extend(EventPacket(round(total / rate + i * end_spacing, 6), seg_start, False, end) for i in range(END_REPEATS))
    return out


class EventDecoder:
    """Turns received telephone-event packets into digits, one per event.

    An event is identified by its RTP timestamp, so retransmitted end packets,
    reordering and the loss of the start packet or of some end packets still
    give exactly one digit. Long events split into segments are recognised as
    continuations.
    """

    def __init__(self, history: int = 32) -> None:
        self._seen: deque[int] = deque(maxlen=history)
        self._last_ts: int | None = None
        self._last_event = -1
        self._last_duration = 0
        self._last_ended = True
        self.events = 0
        self.malformed = 0

    def feed(self, payload: bytes, timestamp: int) -> str | None:
        """Feed one telephone-event payload; returns a digit when a new event starts."""
        ev = EventPayload.unpack(payload)
        if ev is None:
            self.malformed += 1
            return None
        if timestamp in self._seen:
            if timestamp == self._last_ts:
                self._last_duration = max(self._last_duration, ev.duration)
                self._last_ended = self._last_ended or ev.end
            return None
        continuation = (
            self._last_ts is not None
            and ev.event == self._last_event
            and not self._last_ended
            and self._last_duration >= MAX_DURATION - 2000
            and 0 < (timestamp - self._last_ts) % (1 << 32) <= MAX_DURATION + 2000
        )
        self._seen.append(timestamp)
        self._last_ts = timestamp
        self._last_event = ev.event
        self._last_duration = ev.duration
        self._last_ended = ev.end
        if continuation:
            return None
        digit = event_digit(ev.event)
        if digit is not None:
            self.events += 1
        return digit
