import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ringback.media.rtp import JitterBuffer, RtpPacket, RtpReceiver, RtpSender, is_rtcp, parse_rtp


def test_round_trip_all_header_fields():
    pkt = RtpPacket(payload_type=8, sequence=65535, timestamp=0xFFFFFFF0, ssrc=0xDEADBEEF, payload=b"abc",
                    marker=True, csrc=(1, 2, 3), extension=(0xBEDE, b"\x01\x02\x03\x04"), padding=4)
    data = pkt.serialize()
    assert data[0] == 0x80 | 0x20 | 0x10 | 3
    assert data[1] == 0x80 | 8
    assert len(data) == 12 + 12 + 4 + 4 + 3 + 4
    assert parse_rtp(data) == pkt


def test_parse_minimal_and_fields():
    data = struct.pack("!BBHII", 0x80, 0x00, 1234, 5678, 42) + b"\xff" * 160
    pkt = parse_rtp(data)
    assert pkt is not None
    assert (pkt.payload_type, pkt.sequence, pkt.timestamp, pkt.ssrc, pkt.marker) == (0, 1234, 5678, 42, False)
    assert pkt.payload == b"\xff" * 160


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80\x00\x00",
        struct.pack("!BBHII", 0x40, 0, 1, 1, 1),  # version 1
        struct.pack("!BBHII", 0x8F, 0, 1, 1, 1) + b"\x00" * 8,  # 15 CSRCs announced, 2 present
        struct.pack("!BBHII", 0x90, 0, 1, 1, 1) + b"\x00\x00",  # truncated extension header
        struct.pack("!BBHII", 0x90, 0, 1, 1, 1) + b"\x00\x00\x00\x05",  # extension longer than packet
        struct.pack("!BBHII", 0xA0, 0, 1, 1, 1) + b"\x00",  # padding count 0
        struct.pack("!BBHII", 0xA0, 0, 1, 1, 1) + b"\x01\x09",  # padding longer than payload
        struct.pack("!BBHII", 0x80, 200, 1, 1, 1),  # RTCP sender report
    ],
)
def test_malformed_rejected(data):
    assert parse_rtp(data) is None


def test_rtcp_demux():
    assert is_rtcp(struct.pack("!BBH", 0x80, 200, 6))
    assert not is_rtcp(struct.pack("!BBHII", 0x80, 0, 1, 1, 1))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=80))
def test_parse_never_raises(data):
    pkt = parse_rtp(data)
    if pkt is not None:
        assert 0 <= pkt.payload_type < 128 and len(pkt.payload) <= len(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=12, max_size=80))
def test_receiver_survives_garbage(data):
    r = RtpReceiver()
    r.receive(b"\x80" + data[1:], 0.0)
    r.receive(data, 0.01)
    for i in range(5):
        r.pop(0.1 + i * 0.02)


def test_sender_random_start_marker_and_timestamps():
    a, b = RtpSender(0), RtpSender(0)
    assert (a.ssrc, a.sequence, a.timestamp) != (b.ssrc, b.sequence, b.timestamp)
    s = RtpSender(0, ssrc=7, sequence=65534, timestamp=2**32 - 160)
    pkts = [parse_rtp(s.audio(b"\xff" * 160)) for _ in range(3)]
    assert [p.sequence for p in pkts] == [65534, 65535, 0]
    assert [p.timestamp for p in pkts] == [2**32 - 160, 0, 160]
    assert [p.marker for p in pkts] == [True, False, False]
    s.start_talkspurt()
    assert parse_rtp(s.audio(b"\xff" * 160)).marker


def _feed(jb: JitterBuffer, seqs, t: float = 0.0):
    for s in seqs:
        jb.push(s, 0, bytes([s % 256]) * 160, t)


def _drain(jb: JitterBuffer, start: float, n: int):
    out = []
    for i in range(n):
        r = jb.pop(start + i * 0.02)
        out.append(None if r is None or r[1] is None else r[1][0])
    return out


def test_jitter_buffer_reorders_and_waits_for_depth():
    jb = JitterBuffer(depth=0.06)
    _feed(jb, [10, 12, 11, 13, 14])
    assert jb.pop(0.02) is None  # still buffering
    assert _drain(jb, 0.06, 5) == [10, 11, 12, 13, 14]


def test_jitter_buffer_conceals_loss_then_silence():
    jb = JitterBuffer(depth=0.04, conceal="repeat")
    _feed(jb, [1, 2, 5, 6])
    out = _drain(jb, 0.04, 6)
    assert out == [1, 2, 2, None, 5, 6]  # one repeat, then silence
    assert jb.stats.concealed == 2
    jb2 = JitterBuffer(depth=0.04, conceal="silence")
    _feed(jb2, [1, 3])
    assert _drain(jb2, 0.04, 3) == [1, None, 3]


def test_jitter_buffer_drops_late_and_duplicates():
    jb = JitterBuffer(depth=0.02)
    _feed(jb, [100, 101])
    assert _drain(jb, 0.02, 1) == [100]
    jb.push(101, 0, b"x" * 160, 0.03)  # duplicate still buffered
    jb.push(100, 0, b"x" * 160, 0.03)  # duplicate of one already played
    jb.push(99, 0, b"x" * 160, 0.03)  # older than anything played: late
    assert jb.stats.duplicates == 2 and jb.stats.late == 1


def test_jitter_buffer_underrun_rebuffers():
    jb = JitterBuffer(depth=0.04)
    _feed(jb, [1, 2])
    assert _drain(jb, 0.04, 3) == [1, 2, None]
    assert jb.stats.underruns == 1
    jb.push(3, 0, b"\x03" * 160, 0.10)
    assert jb.pop(0.12) is None  # rebuilding depth
    assert jb.pop(0.14)[1][0] == 3


def test_jitter_buffer_adapts_to_fast_sender_clock():
    # the sender's clock is 2 % fast: 51 frames arrive per 50 of our ticks
    jb = JitterBuffer(depth=0.06, drift_window=50)
    seq, t, fill = 0, 0.0, []
    for tick in range(3000):
        t = tick * 0.02
        while seq * 0.02 / 1.02 <= t:
            jb.push(seq, 0, b"\x00" * 160, t)
            seq += 1
        jb.pop(t)
        fill.append(len(jb))
    assert jb.stats.drift_drops > 30
    assert max(fill[-500:]) <= 6  # latency bounded, not growing


def test_receiver_stats_loss_jitter_and_ssrc_change():
    r = RtpReceiver()
    s = RtpSender(0, sequence=65530, timestamp=0)
    sent = [s.audio(b"\xff" * 160) for _ in range(12)]
    for i, data in enumerate(sent):
        if i in (3, 7):
            continue  # lost
        r.receive(data, i * 0.02 + (0.005 if i % 2 else 0.0))
    assert r.stats.received == 10 and r.stats.lost == 2
    assert 0.001 < r.stats.jitter < 0.006
    r.receive(RtpSender(0).audio(b"\xff" * 160), 1.0)
    assert r.stats.ssrc_changes == 1


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 127), st.integers(0, 65535), st.integers(0, 2**32 - 1),
                          st.sampled_from([0, 0x10, 0x20, 0x01]), st.binary(min_size=0, max_size=8)),
                min_size=1, max_size=30))
def test_feed_fast_path_agrees_with_receive(packets):
    # feed() unpacks plain headers in place; it must leave the receiver exactly as receive() does
    a, b = RtpReceiver({0, 8}), RtpReceiver({0, 8})
    now = 0.0
    for pt, seq, ts, flags, payload in packets:
        pkt = RtpPacket(pt, seq, ts, 77, payload, csrc=(5,) if flags == 0x01 else (),
                        extension=(1, b"\x00" * 4) if flags == 0x10 else None, padding=3 if flags == 0x20 else 0)
        data = pkt.serialize()
        got = a.feed(data, now)
        ref = b.receive(data, now)
        assert (got is None) == (ref is None)
        if ref is not None:
            assert got == (ref.payload_type, ref.timestamp, ref.payload)
        assert a.stats.as_dict() == b.stats.as_dict()
        assert a.pop(now + 1) == b.pop(now + 1)
        now += 0.02
