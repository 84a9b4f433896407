"""The media sender process (ringback/media/sender.py): its state machine without a process, then
the real process under a MediaEngine: on time, falls back when killed, frees ports on close."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import struct

import numpy as np
import pytest

from ringback.media import clock as clock_mod
from ringback.media import sender as wire
from ringback.media import tones
from ringback.media.engine import MediaEngine
from tests.media.test_clock_thread import _can_use_rt
from tests.support.ports import free_range


@pytest.fixture
def udp():
    socks: list[socket.socket] = []

    def make() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.settimeout(1.0)
        socks.append(s)
        return s

    yield make
    for s in socks:
        s.close()


def _packet(i: int) -> bytes:
    return bytes([0x80, 0]) + struct.pack(">HII", i, 160 * i, 0x1234) + bytes([i % 256]) * 160


def _group(due: float, rows: list[tuple[int, int, bytes]]) -> bytes:
    slots = np.array([r[0] for r in rows], "<u4").tobytes()
    gens = np.array([r[1] for r in rows], "<u4").tobytes()
    return wire.group_message(due, slots, gens, b"".join(r[2] for r in rows))


def _adopt(sender: wire.Sender, slot: int, gen: int, sock: socket.socket, dest: socket.socket) -> None:
    sender.handle(wire.adopt_message(slot, gen), [os.dup(sock.fileno())], 0.0)
    sender.handle(wire.dest_message(slot, gen, dest.getsockname()), [], 0.0)


def test_group_waits_for_its_time_then_leaves_from_the_sessions_own_port(udp):
    src, sink = udp(), udp()
    s = wire.Sender()
    _adopt(s, 3, 1, src, sink)
    assert s.handle(_group(10.0, [(3, 1, _packet(7))]), [], now=9.0) is None
    s.due(9.99)
    assert s.sent == 0 and s.next_due() == 10.0
    s.due(10.0)
    data, addr = sink.recvfrom(2048)
    assert data == _packet(7)
    assert addr == src.getsockname()  # symmetric RTP: the session's port, not the sender's
    assert s.sent == 1 and s.next_due() is None
    s.close()


def test_groups_leave_in_time_order_and_late_ones_at_once(udp):
    src, sink = udp(), udp()
    s = wire.Sender()
    _adopt(s, 0, 1, src, sink)
    for due, i in ((5.04, 3), (5.02, 2), (5.0, 1)):
        s.handle(_group(due, [(0, 1, _packet(i))]), [], now=4.9)
    s.handle(_group(4.0, [(0, 1, _packet(9))]), [], now=4.9)  # 900 ms late: sent on arrival
    assert s.late == 1 and s.max_late == pytest.approx(0.9)
    s.due(6.0)
    got = [sink.recv(2048)[2:4] for _ in range(4)]
    assert got == [struct.pack(">H", i) for i in (9, 1, 2, 3)]
    s.close()


def test_a_packet_for_a_closed_or_reused_slot_is_never_sent(udp):
    old, new, sink_old, sink_new = udp(), udp(), udp(), udp()
    s = wire.Sender()
    _adopt(s, 0, 1, old, sink_old)
    s.handle(_group(1.0, [(0, 1, _packet(1))]), [], now=0.0)
    reply = s.handle(wire.forget_message(0, 1), [], now=0.0)
    assert reply == b"c" + struct.pack("<II", 0, 1)
    _adopt(s, 0, 2, new, sink_new)  # slot 0 taken by another session before the old packet is due
    s.due(2.0)
    assert s.sent == 0 and s.stale == 1
    sink_new.settimeout(0.05)
    with pytest.raises(TimeoutError):
        sink_new.recv(2048)
    assert s.slots[0][0] == 2  # the slot now belongs to the new session
    s.close()


def test_forget_closes_the_copy_so_the_port_is_free(udp):
    a, sink = udp(), udp()
    port = a.getsockname()[1]
    s = wire.Sender()
    _adopt(s, 1, 4, a, sink)
    a.close()
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with pytest.raises(OSError):
        probe.bind(("127.0.0.1", port))  # the sender's copy still holds it
    s.handle(wire.forget_message(1, 3), [], 0.0)  # an older generation: ignored
    assert 1 in s.slots
    s.handle(wire.forget_message(1, 4), [], 0.0)
    probe.bind(("127.0.0.1", port))
    probe.close()
    assert s.slots == {}


def test_event_packets_keep_their_sizes_and_order(udp):
    src, sink = udp(), udp()
    s = wire.Sender()
    _adopt(s, 2, 1, src, sink)
    pkts = [b"x" * 16, b"y" * 16, b"zz" * 20]
    s.handle(wire.slow_message(0.5, 2, 1, pkts), [], now=1.0)
    assert [sink.recv(2048) for _ in pkts] == pkts
    s.handle(wire.slow_message(0.5, 2, 9, pkts), [], now=1.0)  # wrong generation
    assert s.stale == 3
    s.close()


def test_stats_answer_and_quit_flushes_what_is_pending(udp):
    src, sink = udp(), udp()
    s = wire.Sender()
    _adopt(s, 0, 1, src, sink)
    s.handle(_group(100.0, [(0, 1, _packet(5))]), [], now=0.0)
    stats = json.loads(s.handle(b"?", [], 0.0) or b"{}")
    assert stats["sockets"] == 1 and stats["pending"] == 1
    assert s.handle(b"Q", [], 0.0) == b""  # stop, after sending what was due later
    assert sink.recv(2048) == _packet(5)
    s.close()


@pytest.fixture
async def engine():
    eng = MediaEngine("127.0.0.1", free_range(), rtp_timeout=30)
    await eng.start()
    yield eng
    await eng.close()


async def _pair(engine):
    a = await engine.open_session()
    b = await engine.open_session()
    a.set_remote("127.0.0.1", b.local_port, 0, 101)
    b.set_remote("127.0.0.1", a.local_port, 0, 101)
    return a, b


async def _b_hears_a(a, b, freq: int, ms: int = 300) -> bool:
    heard: list[np.ndarray] = []
    b.add_tap(lambda f, now: heard.append(f))
    await a.play(tones.beep(freq, ms, -12))
    await asyncio.sleep(0.1)
    return bool(heard) and np.abs(np.concatenate(heard)).max() > 1000


async def test_engine_sends_through_the_sender_process(engine):
    link = engine.clock.sender
    assert link is not None and link.pid != os.getpid()
    a, b = await _pair(engine)
    assert await _b_hears_a(a, b, 800)
    st = await link.stats()
    assert st["sockets"] == 2 and st["sent"] > 20 and st["stale"] == 0
    await a.close()
    st = await link.stats()
    assert st["sockets"] == 1  # the closed session's copy is gone


async def test_media_keeps_flowing_when_the_sender_dies(engine, caplog):
    a, b = await _pair(engine)
    link = engine.clock.sender
    assert link is not None
    os.kill(link.pid, signal.SIGKILL)
    await asyncio.sleep(0.1)
    assert await _b_hears_a(a, b, 600)  # the clock's own thread sends again
    assert engine.clock.sender is None
    assert engine.clock.stats()["sender_fallbacks"] == 1
    assert "media sender" in caplog.text


async def test_the_sender_can_be_turned_off():
    clock_mod.set_media_sender(False)
    try:
        eng = MediaEngine("127.0.0.1", free_range(), rtp_timeout=30)
        await eng.start()
        try:
            assert eng.clock.sender is None
            a, b = await _pair(eng)
            assert await _b_hears_a(a, b, 600, 200)
        finally:
            await eng.close()
    finally:
        clock_mod.set_media_sender(True)


async def test_no_sender_process_is_left_after_the_engine_closes():
    eng = MediaEngine("127.0.0.1", free_range(), rtp_timeout=30)
    await eng.start()
    link = eng.clock.sender
    assert link is not None
    await _pair(eng)
    await eng.close()
    assert link.proc.poll() is not None  # exited and reaped


def test_media_sender_setting():
    import argparse

    from ringback.config import add_server_arguments, load_settings

    assert load_settings(None, {}).media_sender is True
    assert load_settings(None, {"RINGBACK_MEDIA_SENDER": "off"}).media_sender is False
    parser = argparse.ArgumentParser()
    add_server_arguments(parser)
    args = parser.parse_args(["--media-sender", "off"])
    assert load_settings(args, {"RINGBACK_MEDIA_SENDER": "on"}).media_sender is False  # the flag wins
    with pytest.raises(ValueError, match="on or off"):
        load_settings(None, {"RINGBACK_MEDIA_SENDER": "sometimes"})


@pytest.mark.skipif(not _can_use_rt(), reason="no permission for SCHED_RR here")
async def test_the_sender_runs_real_time_and_outlives_a_group_sigterm(engine):
    link = engine.clock.sender
    assert link is not None
    assert os.sched_getscheduler(link.pid) == os.SCHED_RR
    assert os.sched_getscheduler(0) != os.SCHED_RR  # nothing else was promoted
    os.kill(link.pid, signal.SIGTERM)  # as a service manager's stop reaches the whole group
    await asyncio.sleep(0.1)
    assert link.proc.poll() is None and (await link.stats())["sockets"] == 0


async def test_a_stuck_sender_is_dropped_and_media_goes_on(engine):
    a, b = await _pair(engine)
    c, d = await _pair(engine)
    link = engine.clock.sender
    assert link is not None
    os.kill(link.pid, signal.SIGSTOP)
    try:
        await asyncio.wait_for(c.close(), 5)  # waits RELEASE_TIMEOUT for the port, then gives up on it
        await asyncio.sleep(0.1)
        assert engine.clock.sender is None
        assert await _b_hears_a(a, b, 600)
    finally:
        with contextlib.suppress(ProcessLookupError):  # already reaped by the fallback
            os.kill(link.pid, signal.SIGCONT)
