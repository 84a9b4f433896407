import asyncio
import socket
import struct

import numpy as np
import pytest

from ringback.media import dtmf, tones
from ringback.media.engine import MediaEngine, NoPortAvailable
from ringback.media.mixer import Mixer
from ringback.media.rtp import RtpSender
from tests.support.ports import free_range


@pytest.fixture
async def engine():
    eng = MediaEngine("127.0.0.1", free_range(), rtp_timeout=0.5)
    await eng.start()
    yield eng
    await eng.close()


async def _pair(engine, pt=0, te=101, te_b=None):
    a = await engine.open_session()
    b = await engine.open_session()
    a.set_remote("127.0.0.1", b.local_port, pt, te)
    b.set_remote("127.0.0.1", a.local_port, pt, te if te_b is None else te_b)
    return a, b


def _record(session):
    frames: list[np.ndarray] = []
    session.add_tap(lambda f, now: frames.append(f))
    return frames


def _best_corr(heard: np.ndarray, ref: np.ndarray) -> float:
    h = heard.astype(float)
    r = ref.astype(float)
    c = np.correlate(h, r, "valid")
    i = int(np.argmax(c))
    seg = h[i : i + len(r)]
    return float(c[i] / np.sqrt(np.dot(r, r) * np.dot(seg, seg) + 1e-9))


def _speechlike(ms: int) -> np.ndarray:
    rng = np.random.default_rng(5)
    noise = rng.normal(0, 1, ms * 8)
    env = np.abs(np.sin(np.arange(ms * 8) / 8000 * 2 * np.pi * 3))  # 3 Hz syllables
    kernel = np.hanning(9)
    x = np.convolve(noise, kernel, "same") * env
    return (x / np.abs(x).max() * 8000).astype(np.int16)


@pytest.mark.parametrize("pt", [0, 8])
async def test_audio_both_ways_by_correlation(engine, pt):
    a, b = await _pair(engine, pt)
    heard_a, heard_b = _record(a), _record(b)
    sa, sb = _speechlike(600), tones.beep(600, 500, -12)
    t0 = asyncio.get_running_loop().time()
    await asyncio.gather(a.play(sa), b.play(sb))
    elapsed = asyncio.get_running_loop().time() - t0
    assert 0.55 <= elapsed < 0.8  # play returns once everything was sent, in real time
    await asyncio.sleep(0.15)
    assert _best_corr(np.concatenate(heard_b), sa) > 0.97
    assert _best_corr(np.concatenate(heard_a), sb) > 0.97
    assert b.stats["rx"]["lost"] == 0 and a.stats["rx"]["received"] > 30


@pytest.mark.parametrize("te", [101, 120])
async def test_rfc4733_digits_both_ways(engine, te):
    a, b = await _pair(engine, 0, te)
    await a.send_digits("19*#0")
    got = [await b.next_digit(1.0) for _ in range(5)]
    assert "".join(got) == "19*#0"
    await b.send_digits("AD")
    assert [await a.next_digit(1.0) for _ in range(2)] == ["A", "D"]
    assert await b.next_digit(0.3) is None  # exactly once each
    assert b.stats["digits"]["rfc4733"] == 5


async def test_inband_digits_without_telephone_event(engine):
    a, b = await _pair(engine, 0, None)
    await a.send_digits("42w7")
    got = [await b.next_digit(1.0) for _ in range(3)]
    assert got == ["4", "2", "7"]
    assert b.stats["digits"]["inband"] == 3


async def test_digit_heard_both_ways_counts_once(engine):
    a, b = await _pair(engine, 0, 101)
    # a sends RFC 4733 events and the same digits in-band, as some gateways do
    await asyncio.gather(a.send_digits("58"), a.play(dtmf.tones("58", on_ms=80, off_ms=100)))
    got = [await b.next_digit(0.6) for _ in range(3)]
    assert got[:2] == ["5", "8"] and got[2] is None


async def test_interruptible_play_returns_digit_and_keeps_it(engine):
    a, b = await _pair(engine, 0, 101)
    long_prompt = tones.beep(500, 3000)
    task = asyncio.create_task(b.play(long_prompt, interruptible=True))
    await asyncio.sleep(0.2)
    await a.send_digits("3")
    assert await asyncio.wait_for(task, 1.0) == "3"
    assert await b.next_digit(0.1) == "3"
    b.inject_digit("9")
    assert await b.play(long_prompt, interruptible=True) == "9"  # type-ahead interrupts at once
    b.flush_digits()
    assert await b.next_digit(0.05) is None


async def test_cancelling_play_stops_audio(engine):
    a, b = await _pair(engine)
    heard = _record(b)
    task = asyncio.create_task(a.play(tones.beep(800, 5000, -10)))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.3)
    n = len(heard)
    await asyncio.sleep(0.2)
    assert not np.abs(np.concatenate(heard[n:])).any()  # silence after the stop
    assert not a.playing


async def test_stop_playback_resolves_waiters(engine):
    a, _ = await _pair(engine)
    task = asyncio.create_task(a.play(tones.beep(800, 5000)))
    await asyncio.sleep(0.05)
    a.stop_playback()
    assert await asyncio.wait_for(task, 0.5) is None


async def test_mixer_three_members_nobody_hears_themselves(engine):
    # three "phones" each talking to one conference leg
    legs, phones = [], []
    for _ in range(3):
        leg, phone = await _pair(engine)
        legs.append(leg)
        phones.append(phone)
    mixer = Mixer(engine)
    for leg in legs:
        mixer.add(leg)
    heard = [_record(p) for p in phones]
    freqs = [500.0, 1100.0, 1700.0]
    await asyncio.gather(*(p.play(tones.beep(f, 800, -15)) for p, f in zip(phones, freqs, strict=True)))
    await asyncio.sleep(0.3)
    for i, frames in enumerate(heard):
        x = np.concatenate(frames).astype(float)
        spec = np.abs(np.fft.rfft(x))
        f = np.fft.rfftfreq(len(x), 1 / 8000)
        power = {fr: spec[(f > fr - 20) & (f < fr + 20)].max() for fr in freqs}
        others = [power[fr] for j, fr in enumerate(freqs) if j != i]
        assert min(others) > 30 * power[freqs[i]], (i, power)
    mixer.set_muted(legs[0], True)
    for h in heard:
        h.clear()
    await asyncio.gather(*(p.play(tones.beep(f, 400, -15)) for p, f in zip(phones, freqs, strict=True)))
    await asyncio.sleep(0.2)
    x = np.concatenate(heard[1]).astype(float)
    spec = np.abs(np.fft.rfft(x))
    f = np.fft.rfftfreq(len(x), 1 / 8000)
    assert spec[(f > 480) & (f < 520)].max() < spec[(f > 1680) & (f < 1720)].max() / 30  # muted leg 0 unheard
    mixer.close()


async def test_mixer_member_hears_own_play_mixed_in(engine):
    leg_a, phone_a = await _pair(engine)
    leg_b, phone_b = await _pair(engine)
    mixer = Mixer(engine)
    mixer.add(leg_a)
    mixer.add(leg_b)
    heard_a = _record(phone_a)
    await asyncio.gather(leg_a.play(tones.beep(1000, 400, -15)), phone_b.play(tones.beep(600, 400, -15)))
    await asyncio.sleep(0.2)
    x = np.concatenate(heard_a).astype(float)
    spec = np.abs(np.fft.rfft(x))
    f = np.fft.rfftfreq(len(x), 1 / 8000)
    assert spec[(f > 980) & (f < 1020)].max() > 1000 and spec[(f > 580) & (f < 620)].max() > 1000
    mixer.close()


async def test_rtp_timeout_fires_once(engine):
    a, b = await _pair(engine)
    fired = []
    a.on_rtp_timeout = lambda: fired.append(asyncio.get_running_loop().time())
    await b.close()  # the far end goes silent
    t0 = asyncio.get_running_loop().time()
    await asyncio.sleep(1.3)
    assert len(fired) == 1 and 0.4 <= fired[0] - t0 <= 0.7


async def test_symmetric_rtp_latches_to_actual_source(engine):
    a = await engine.open_session()
    b = await engine.open_session()
    a.set_remote("127.0.0.1", 9, 0, None)  # what SDP said; the packets come from elsewhere (NAT)
    b.set_remote("127.0.0.1", a.local_port, 0, None)
    heard = _record(b)
    await asyncio.sleep(0.1)
    await a.play(tones.beep(700, 300))
    await asyncio.sleep(0.15)
    assert np.abs(np.concatenate(heard)).max() > 1000
    assert a.stats["latched"] == f"127.0.0.1:{b.local_port}"


async def test_ports_released_after_close_and_no_port_available():
    lo, _ = free_range(20)
    eng = MediaEngine("127.0.0.1", (lo, lo + 5))  # three even ports at most
    await eng.start()
    sessions = []
    with pytest.raises(NoPortAvailable):
        for _ in range(10):
            sessions.append(await eng.open_session())
    assert 1 <= len(sessions) <= 3 and eng.active_sessions == len(sessions)
    ports = [s.local_port for s in sessions]
    assert all(p % 2 == 0 for p in ports)
    for s in sessions:
        await s.close()
        await s.close()  # idempotent
    assert eng.active_sessions == 0
    for p in ports:
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", p))  # really free again
        probe.close()
    again = await eng.open_session()
    assert again.local_port in ports
    await eng.close()
    assert eng.active_sessions == 0


async def test_garbage_and_foreign_packets_do_not_break_session(engine):
    a, b = await _pair(engine)
    heard = _record(b)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for junk in (b"", b"\x00" * 5, b"\xff" * 300, RtpSender(0).audio(b"\x00" * 7)):
        sock.sendto(junk, ("127.0.0.1", b.local_port))
    sock.close()
    await a.play(tones.beep(900, 300))
    await asyncio.sleep(0.15)
    assert _best_corr(np.concatenate(heard), tones.beep(900, 300)) > 0.95


async def test_burst_of_packets_in_one_tick_all_received(engine):
    # the clock drains each socket once per tick: a peer that sends 30 frames at once
    # (a NAT rebinding, a stalled sender catching up) loses none of them
    a = await engine.open_session()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    a.set_remote("127.0.0.1", sock.getsockname()[1], 0, None)
    a._receiver.buffer.max_packets = 64
    sender = RtpSender(0)
    for _ in range(30):
        sock.sendto(sender.audio(b"\x00" * 160), ("127.0.0.1", a.local_port))
    await asyncio.sleep(0.4)  # read a few per tick: the socket's buffer holds the rest meanwhile
    sock.close()
    assert a.stats["rx"]["received"] == 30 and a.stats["rx_datagrams"] == 30


async def test_header_extension_and_csrc_packets_are_heard(engine):
    # not every peer sends the plain 12-byte header the fast path unpacks
    from ringback.media import g711
    from ringback.media.rtp import RtpPacket

    a = await engine.open_session()
    heard = _record(a)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    a.set_remote("127.0.0.1", sock.getsockname()[1], 0, None)
    beep = tones.beep(700, 400, -10)
    codes = g711.ulaw_encode(beep)
    for i in range(20):
        pkt = RtpPacket(0, 100 + i, 1000 + 160 * i, 99, codes[160 * i : 160 * (i + 1)].tobytes(),
                        csrc=(7,), extension=(0xBEDE, b"\x10\x01\x00\x00"))
        sock.sendto(pkt.serialize(), ("127.0.0.1", a.local_port))
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.15)
    sock.close()
    assert _best_corr(np.concatenate(heard), beep[:1600]) > 0.95


async def test_sessions_send_in_spread_phases_on_a_20ms_grid(engine):
    # each session keeps its own phase inside the 20 ms: packets do not leave in one burst
    SO_TIMESTAMPNS = 35
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sink.setblocking(False)
    sessions = [await engine.open_session() for _ in range(40)]
    for s in sessions:
        s.set_remote("127.0.0.1", sink.getsockname()[1], 0, None)
    await asyncio.sleep(0.5)
    arrivals: dict[int, list[float]] = {}
    while True:
        try:
            data, anc, _, _ = sink.recvmsg(256, socket.CMSG_SPACE(16))
        except BlockingIOError:
            break
        sec, nsec = struct.unpack("qq", anc[0][2][:16])
        arrivals.setdefault(struct.unpack_from("!I", data, 8)[0], []).append(sec + nsec * 1e-9)
    sink.close()
    assert len(arrivals) == 40
    phases = []
    for times in arrivals.values():
        t = np.array(times[-15:])
        assert abs(np.median(np.diff(t)) - 0.02) < 0.002  # one packet per 20 ms
        phases.append(t[-1] % 0.02)
    # phases of the 40 sessions cover the period: at least 5 of the ten 2 ms slots in use
    assert len({int(p / 0.002) for p in phases}) >= 5
