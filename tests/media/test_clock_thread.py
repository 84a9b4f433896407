"""The media clock's own thread and what crosses between it and the event loop."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time

import numpy as np
import pytest

from ringback.media import clock as clock_mod
from ringback.media import dtmf, tones
from ringback.media.engine import MediaEngine, RtpSession
from ringback.media.mixer import Mixer
from tests.support.ports import free_range


def _clock_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "media-clock"]


@pytest.fixture
async def engine():
    eng = MediaEngine("127.0.0.1", free_range(), rtp_timeout=0.3)
    await eng.start()
    yield eng
    await eng.close()


async def _pair(engine: MediaEngine, te: int | None = 101) -> tuple[RtpSession, RtpSession]:
    a = await engine.open_session()
    b = await engine.open_session()
    a.set_remote("127.0.0.1", b.local_port, 0, te)
    b.set_remote("127.0.0.1", a.local_port, 0, te)
    return a, b


async def test_clock_runs_in_its_own_thread_and_stops_with_the_last_engine():
    before = sys.getswitchinterval()
    eng = MediaEngine("127.0.0.1", free_range())
    await eng.start()
    second = MediaEngine("127.0.0.1", free_range())
    await second.start()  # same event loop: the same clock, still one thread
    assert eng.clock is second.clock
    assert len(_clock_threads()) == 1 and eng.clock.running
    assert sys.getswitchinterval() == pytest.approx(min(before, clock_mod.SWITCH_INTERVAL))
    await eng.open_session()
    await asyncio.sleep(0.1)
    await eng.close()
    assert len(_clock_threads()) == 1  # the other engine still uses it
    await second.close()
    assert _clock_threads() == []
    assert sys.getswitchinterval() == pytest.approx(before)


@pytest.mark.parametrize("te", [101, None], ids=["rfc4733", "inband"])
async def test_digit_detected_by_the_clock_thread_reaches_an_awaiting_coroutine(engine, te):
    a, b = await _pair(engine, te)
    loop_thread = threading.current_thread()
    seen: list[threading.Thread] = []
    accept = b._accept

    def spy(*args: object) -> None:
        seen.append(threading.current_thread())
        accept(*args)  # type: ignore[arg-type]

    b._accept = spy  # type: ignore[method-assign]
    waiting = asyncio.create_task(b.next_digit(3.0))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    await a.send_digits("7")
    assert await asyncio.wait_for(waiting, 3.0) == "7"
    assert seen and all(t is loop_thread for t in seen)  # detected on the clock, handled on the loop


async def test_taps_and_rtp_timeout_run_on_the_event_loop(engine):
    a, b = await _pair(engine)
    loop_thread = threading.current_thread()
    tap_threads: set[threading.Thread] = set()
    timeout_threads: list[threading.Thread] = []
    b.add_tap(lambda frame, now: tap_threads.add(threading.current_thread()))
    b.on_rtp_timeout = lambda: timeout_threads.append(threading.current_thread())
    await a.play(tones.beep(800, 200))
    assert tap_threads == {loop_thread}
    await a.close()  # nothing more arrives: the timeout (0.3 s) fires
    for _ in range(40):
        if timeout_threads:
            break
        await asyncio.sleep(0.05)
    assert timeout_threads == [loop_thread]


async def test_play_cancelled_from_the_loop_is_dropped_by_the_clock(engine):
    a, b = await _pair(engine)
    heard: list[np.ndarray] = []
    b.add_tap(lambda frame, now: heard.append(frame))
    plays = [asyncio.create_task(a.play(tones.beep(700, 2000, -10))) for _ in range(3)]
    await asyncio.sleep(0.2)
    assert a.playing
    for t in plays:
        t.cancel()
    await asyncio.gather(*plays, return_exceptions=True)
    assert not a.playing  # at once, before the clock has popped them
    await asyncio.sleep(0.2)
    assert not a._plays  # popped by the clock thread
    n = len(heard)
    await asyncio.sleep(0.2)
    assert not np.abs(np.concatenate(heard[n:])).any()
    assert await a.play(tones.beep(700, 100)) is None  # the queue still works


async def test_close_during_a_tick_waits_for_it(engine, caplog):
    a, b = await _pair(engine)
    in_tick = threading.Event()
    tick_done = threading.Event()
    take = b._rx_take

    def slow_take(now: float) -> bytes | None:
        # runs inside the tick, on the clock thread, holding the clock's lock
        if not in_tick.is_set():
            in_tick.set()
            time.sleep(0.1)
            tick_done.set()
        return take(now)

    b._rx_take = slow_take  # type: ignore[method-assign]
    caplog.set_level(logging.ERROR, logger="ringback.media.clock")
    await asyncio.to_thread(in_tick.wait, 2.0)
    assert in_tick.is_set() and not tick_done.is_set()
    await b.close()  # unregisters: blocks until the tick is over
    assert tick_done.is_set()
    assert b._slot == -1
    ticks = engine.clock.ticks
    await asyncio.sleep(0.1)
    assert engine.clock.ticks > ticks  # the clock goes on
    assert not [r for r in caplog.records if "tick failed" in r.getMessage()]


async def test_sessions_and_mixers_change_while_the_clock_ticks(engine, caplog):
    # the event loop opens, bridges and closes sessions as fast as it can while the clock thread
    # ticks with live audio: no tick may fail and no mixer may see a half-changed member list
    caplog.set_level(logging.ERROR)
    talkers = [await _pair(engine) for _ in range(4)]
    music = [asyncio.create_task(x.play(tones.beep(600, 3000, -20))) for x, _ in talkers]
    mixer = Mixer(engine)
    for x, _ in talkers:
        mixer.add(x)
    deadline = time.monotonic() + 1.0
    rounds = 0
    while time.monotonic() < deadline:
        s, t = await _pair(engine)
        mixer.add(s)
        mixer.set_muted(s, rounds % 2 == 0)
        s.set_remote("127.0.0.1", t.local_port, 8 if rounds % 2 else 0, 101)  # a codec change too
        if rounds % 3 == 0:
            await asyncio.sleep(0)
        await s.close()  # leaves the mixer through the engine
        await t.close()
        rounds += 1
    for m in music:
        m.cancel()
    await asyncio.gather(*music, return_exceptions=True)
    assert rounds > 50
    assert len(mixer) == len(talkers)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.records[:3]
    assert engine.active_sessions == 2 * len(talkers)


async def test_dtmf_in_band_from_a_busy_loop_still_detected(engine):
    # the event loop is kept busy in Python (as call setup keeps it) while a digit plays:
    # the clock thread still runs its ticks and the digit still arrives
    a, b = await _pair(engine, te=None)
    ticks = engine.clock.ticks

    def busy(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            sum(range(1000))

    task = asyncio.create_task(a.play(dtmf.tones("9", on_ms=100, off_ms=100)))
    await asyncio.sleep(0)
    busy(0.4)  # the loop does not yield for 400 ms
    assert engine.clock.ticks - ticks >= 15  # about 20 ticks went by meanwhile
    await task
    assert await b.next_digit(1.0) == "9"


def _can_use_rt() -> bool:
    try:
        prio = os.sched_param(1)
        old = os.sched_getscheduler(0), os.sched_getparam(0)
        os.sched_setscheduler(0, os.SCHED_RR, prio)
        os.sched_setscheduler(0, old[0], old[1])
        return True
    except (OSError, AttributeError):
        return False


@pytest.mark.skipif(not _can_use_rt(), reason="no permission for SCHED_RR here")
async def test_rt_priority_promotes_the_clock_thread_only():
    clock_mod.set_rt_priority(7)
    try:
        eng = MediaEngine("127.0.0.1", free_range())
        await eng.start()
        try:
            await asyncio.sleep(0.05)
            (t,) = _clock_threads()
            assert os.sched_getscheduler(t.native_id) == os.SCHED_RR
            assert os.sched_getparam(t.native_id).sched_priority == 7
            assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the event loop's thread is untouched
        finally:
            await eng.close()
    finally:
        clock_mod.set_rt_priority(0)


async def test_a_refused_rt_priority_leaves_the_clock_running(monkeypatch, caplog):
    def refuse(*_: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    clock_mod.set_rt_priority(5)
    try:
        eng = MediaEngine("127.0.0.1", free_range())
        await eng.start()
        try:
            a, b = await _pair(eng)
            await asyncio.sleep(0.2)
            assert eng.clock.running and eng.clock.ticks > 3
        finally:
            await eng.close()
    finally:
        clock_mod.set_rt_priority(0)
    assert any("real-time priority 5 refused" in r.getMessage() for r in caplog.records)
