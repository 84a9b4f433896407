import pytest

from ringback.media.rfc4733 import END_REPEATS, EventDecoder, EventPayload, event_code, event_packets


def test_payload_codec():
    p = EventPayload(11, True, 10, 800)
    assert p.pack() == bytes([11, 0x80 | 10, 0x03, 0x20])
    assert EventPayload.unpack(p.pack()) == p
    assert EventPayload.unpack(b"\x01\x02") is None
    assert event_code("*") == 10 and event_code("d") == 15
    with pytest.raises(ValueError):
        event_code("x")


def test_schedule_marker_timestamp_updates_and_triple_end():
    pkts = event_packets("5", 0.2, interval=0.05)
    evs = [EventPayload.unpack(p.payload) for p in pkts]
    assert [p.marker for p in pkts] == [True] + [False] * (len(pkts) - 1)
    assert {p.ts_offset for p in pkts} == {0}  # one timestamp for the whole event
    updates = [p.at for p, e in zip(pkts, evs, strict=True) if not e.end]
    assert updates == pytest.approx([0.0, 0.05, 0.1, 0.15])
    ends = [e for e in evs if e.end]
    assert len(ends) == END_REPEATS and all(e.duration == 1600 for e in ends)
    durations = [e.duration for e in evs]
    assert durations == sorted(durations) and all(e.event == 5 for e in evs)


def test_long_event_wraps_duration_into_segments():
    pkts = event_packets("1", 9.0)
    evs = [EventPayload.unpack(p.payload) for p in pkts]
    assert max(e.duration for e in evs) == 0xFFFF
    offsets = sorted({p.ts_offset for p in pkts})
    assert offsets == [0, 0xFFFF]
    ends = [e for e in evs if e.end]
    assert len(ends) == 3 and ends[0].duration == 72000 - 0xFFFF
    dec = EventDecoder()
    got = [dec.feed(p.payload, 1000 + p.ts_offset) for p in pkts]
    assert [d for d in got if d] == ["1"]


def _packets(digit, ts):
    return [(p.payload, ts + p.ts_offset) for p in event_packets(digit, 0.1)]


def test_decoder_one_digit_per_event_with_retransmitted_ends():
    dec = EventDecoder()
    out = [dec.feed(pl, ts) for pl, ts in _packets("7", 5000) + _packets("7", 7000) + _packets("#", 9000)]
    assert [d for d in out if d] == ["7", "7", "#"]


def test_decoder_survives_loss_of_start_and_some_ends():
    dec = EventDecoder()
    pk = _packets("3", 100)
    assert [d for d in (dec.feed(pl, ts) for pl, ts in pk[1:]) if d] == ["3"]
    dec = EventDecoder()
    only_last_end = [pk[-1]]
    assert [dec.feed(pl, ts) for pl, ts in only_last_end] == ["3"]


def test_decoder_reordered_and_malformed():
    dec = EventDecoder()
    pk = _packets("9", 100) + _packets("0", 2000)
    order = [pk[1], pk[0], pk[6], pk[2], pk[5], pk[3], pk[4], pk[7], pk[8], pk[9]]
    assert [d for d in (dec.feed(pl, ts) for pl, ts in order) if d] == ["9", "0"]
    assert dec.feed(b"\x00", 5) is None and dec.malformed == 1
    assert dec.feed(bytes([16, 0x80, 0, 100]), 9999) is None  # flash is not a digit
