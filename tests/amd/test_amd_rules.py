"""The detector's newer rules on constructed signals (no TTS): held vowels are not beeps, a beep
must stand apart from speech, sentence pauses mean a recording, a late beep still wins over
"silence -> person", SIT means a machine; and the engine's batcher feeds one DetectorBank pass
per tick with the same results as per-call detectors."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from ringback.amd import AmdParams, Detector, GreetingEnd, Verdict
from ringback.amd.beep import BeepTracker
from ringback.engine.amd_run import _AmdBatcher
from tests.amd.amd_voiced import voiced
from tests.support.amd_signals import detect

SR = 8000
RNG = np.random.default_rng(7)


def sil(s: float) -> np.ndarray:
    return np.zeros(int(round(s * SR)), np.float64)


def burst(s: float, amp: float = 3000.0) -> np.ndarray:
    """Speech stand-in: a voiced sound (harmonics of a gliding pitch, never tonal) in 200 ms
    syllables with 40 ms dips, so the noise floor tracker sees the quiet between them, as it does
    in real speech."""
    n = int(round(s * SR))
    x = voiced(RNG, n, amp)
    syl, dip = int(0.2 * SR), int(0.04 * SR)
    for start in range(syl, n - dip, syl + dip):
        x[start : start + dip] = 0.0
    return x


def tone(hz: float | tuple[float, float], s: float, amp: float = 8000.0) -> np.ndarray:
    """A pure tone; a (start, end) pair glides linearly like a held, inflected vowel."""
    n = int(round(s * SR))
    f0, f1 = (hz, hz) if isinstance(hz, float) else hz
    f = np.linspace(f0, f1, n)
    return np.sin(2 * np.pi * np.cumsum(f) / SR) * amp


def run(*parts: np.ndarray, params: AmdParams | None = None, tail: float = 8.0) -> tuple[Detector, list[object]]:
    x = np.clip(np.concatenate([*parts, sil(tail)]), -32768, 32767).astype(np.int16)
    return detect(x, params)


def beeps(events: list[object]) -> list[GreetingEnd]:
    return [e for e in events if isinstance(e, GreetingEnd) and e.kind == "beep"]


def test_gliding_tone_inside_speech_is_not_a_beep() -> None:
    # A held vowel whose harmonic looks pure but glides 6 Hz a frame, between bits of speech.
    det, events = run(sil(0.3), burst(0.3), tone((300.0, 250.0), 0.16), burst(0.2))
    assert det.verdict is not None and det.verdict.cause != "beep"
    assert not beeps(events)


def test_steady_tone_glued_to_speech_then_more_speech_is_not_a_beep() -> None:
    # Steady for 120 ms, but it starts where speech stops and speech follows at once.
    det, events = run(sil(0.3), burst(0.4), tone(500.0, 0.12), burst(0.3))
    assert det.verdict is not None and det.verdict.cause != "beep"


def test_short_tone_glued_to_speech_is_not_a_beep_even_before_quiet() -> None:
    p = AmdParams()
    dur = (p.beep_attached_min_ms - 60) / 1000  # long enough alone, too short when attached
    det, events = run(sil(0.3), burst(0.4), tone(700.0, dur))
    assert not beeps(events)
    assert det.verdict is not None and det.verdict.cause != "beep"


def test_long_steady_tone_right_after_speech_then_quiet_is_a_beep() -> None:
    # Some machines beep the moment the greeting stops: long, steady and followed by quiet.
    x = [sil(0.3), burst(2.0), burst(0.5), tone(1000.0, 0.4)]
    end = sum(p.size for p in x) / SR
    det, events = run(*x)
    got = beeps(events)
    assert det.answered_by == "machine" and got
    assert abs(got[0].at - end) <= 0.06


def test_tone_followed_at_once_by_speech_is_not_confirmed() -> None:
    # Alone after silence, but speech starts inside the confirmation window.
    det, events = run(sil(0.3), burst(0.3), sil(0.4), tone(800.0, 0.2), burst(0.3))
    assert not beeps(events)


def test_beep_after_silence_is_found_and_confirmed_quickly() -> None:
    x = [sil(0.3), burst(3.0), sil(0.5), tone(1050.0, 0.2)]
    end = sum(p.size for p in x) / SR
    det, events = run(*x)
    got = beeps(events)
    assert got and abs(got[0].at - end) <= 0.03
    assert got[0].decided_at - got[0].at <= (AmdParams().beep_confirm_ms + 40) / 1000


def test_late_beep_beats_the_long_silence_human_rule() -> None:
    # ~1.7 s of speech (a short greeting), 1.1 s of silence, then the beep: the person rule for
    # that much speech waits human_long_silence_ms, long enough for the beep to arrive.
    p = AmdParams()
    assert p.human_long_silence_ms > 1100 + 80
    det, events = run(sil(0.3), burst(1.0), sil(0.15), burst(1.0), sil(1.1), tone(600.0, 0.3))
    assert det.answered_by == "machine" and det.verdict is not None and det.verdict.cause == "beep"


def test_sentence_pauses_mean_a_recording() -> None:
    p = AmdParams()
    pause = (p.sentence_pause_ms + 100) / 1000
    det, _ = run(sil(0.3), burst(0.4), sil(pause), burst(0.4), sil(pause), burst(0.4))
    assert det.answered_by == "machine" and det.verdict is not None and det.verdict.cause == "sentences"


def test_comma_pauses_and_short_answer_are_a_person() -> None:
    det, events = run(sil(0.3), burst(0.3), sil(0.15), burst(0.4))
    assert det.answered_by == "human"
    v = events[0]
    assert isinstance(v, Verdict)
    # Decided as soon as the silence after the speech (which ended at 0.3 + 0.85 s) reached what
    # this speaker's pace asks for, within a frame or two.
    assert v.decided_at == pytest.approx(1.15 + det._human_silence_needed() / 1000, abs=0.06)
    assert det._human_silence_needed() < 800  # a short answer is decided soon


def test_one_sentence_pause_and_enough_speech_is_a_machine() -> None:
    p = AmdParams()
    pause = (p.sentence_pause_ms + 100) / 1000
    det, _ = run(sil(0.3), burst(1.2), sil(pause), burst(1.6))
    assert det.verdict is not None and det.verdict.cause == "sentences-speech"


def test_sit_before_an_intercept_is_a_machine() -> None:
    sit = [tone(913.8, 0.274), tone(1370.6, 0.274), tone(1776.7, 0.38)]
    det, events = run(sil(0.2), *sit, sil(0.2), burst(0.5))
    assert det.answered_by == "machine" and det.verdict is not None and det.verdict.cause == "sit"
    off, _ = run(sil(0.2), *sit, sil(0.2), burst(0.5), params=AmdParams(sit_min_tones=0))
    assert off.verdict is not None and off.verdict.cause != "sit"


def test_tracker_needs_two_steady_frames_before_a_tone_sounds() -> None:
    bt = BeepTracker(AmdParams())
    bt.step(0, True, 500.0, -(1 << 30))
    assert not bt.tone_active  # one pure-looking frame may be a vowel
    bt.step(20, True, 500.3, -(1 << 30))
    assert bt.tone_active
    bt.step(40, True, 506.0, -(1 << 30))  # a 6 Hz jump: a glide, not the same tone
    assert not bt.tone_active


# --- the engine's batcher ------------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.mixers: list[object] = []

    def add_mixer(self, m: object) -> None:
        self.mixers.append(m)

    def remove_mixer(self, m: object) -> None:
        self.mixers.remove(m)


class _Session:
    def __init__(self, slot: int) -> None:
        self._slot = slot


def test_batcher_matches_per_call_detectors_and_leaves_the_clock() -> None:
    async def main() -> None:
        signals = [
            np.concatenate([sil(0.3), burst(0.4), sil(6)]),
            np.concatenate([sil(0.3), burst(3.0), sil(0.5), tone(1000.0, 0.3), sil(3)]),
            np.concatenate([sil(0.3), burst(0.4), sil(6)]),
        ]
        pcm = [np.clip(s, -32768, 32767).astype(np.int16) for s in signals]
        n = min(p.size for p in pcm) // 160
        clock = _Clock()
        b = _AmdBatcher(clock)  # type: ignore[arg-type]
        # Slots as the clock numbers sessions; slot 1 is some other call not under analysis.
        slots = [0, 2, 3]
        entries = [b.add(_Session(s), Detector()) for s in slots]  # type: ignore[arg-type]
        assert clock.mixers == [b]
        singles = [Detector() for _ in pcm]
        want: list[list[object]] = [[] for _ in pcm]
        rx = np.zeros((4, 160), np.int16)
        for k in range(n):
            rx[1] = 12345  # the other call's audio must not leak in
            for i, s in enumerate(slots):
                rx[s] = pcm[i][k * 160 : (k + 1) * 160]
                if not singles[i].done:
                    ev = singles[i].feed(rx[s])
                    while ev is not None:
                        want[i].append(ev)
                        ev = singles[i].next_event()
            b._mix(rx, np.zeros((4, 160), np.int32), np.ones(4, bool))
        got = [[e.events.get_nowait() for _ in range(e.events.qsize())] for e in entries]
        assert got == want
        assert [type(g[0]) for g in got] == [Verdict, Verdict, Verdict]
        assert got[1][-1] == GreetingEnd(kind="beep", at=got[1][-1].at, decided_at=got[1][-1].decided_at)
        b.remove(_Session(9))  # an unrelated session closing changes nothing
        assert clock.mixers == [b]
        b.remove(entries[0].session)
        b.discard(entries[1])
        b.discard(entries[2])
        assert clock.mixers == []

    asyncio.run(main())
