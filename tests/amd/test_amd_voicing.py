"""Voicing (``voicing.periodicity``) and the rule built on it: a run of speech-like frames becomes
speech only at a voiced frame, so noise bursts are neither words nor syllables nor sentences.
Constructed signals only: a voiced sound against bursty noise and knocks at the same level."""

from __future__ import annotations

import numpy as np
import pytest

from ringback.amd import AmdParams, Detector, DetectorBank
from ringback.amd.corpus import _mulaw_roundtrip
from ringback.amd.voicing import periodicity
from tests.amd.amd_voiced import voiced
from tests.support.amd_signals import run, sil

SR = 8000
RNG = np.random.default_rng(5)


def frames(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(prev, cur) pairs of consecutive 20 ms frames of ``x``."""
    f = x[: x.size // 160 * 160].reshape(-1, 160)
    return f[:-1], f[1:]


def noise_burst(s: float, amp: float = 3000.0) -> np.ndarray:
    """Static: white noise at RMS ``amp`` under a random, fluttering envelope."""
    n = int(round(s * SR))
    env = np.interp(np.arange(n), np.linspace(0, n, 12), RNG.uniform(0.3, 1.0, 12))
    x = RNG.standard_normal(n) * env
    return x * amp / np.sqrt(np.mean(x**2))


def knock(s: float, amp: float = 3000.0) -> np.ndarray:
    """A knock or a clink as a phone line carries it (through G.711): a click, then three
    inharmonic partials ringing down (each partial on its own repeats, which a plain
    autocorrelation takes for a pitch)."""
    n = int(round(s * SR))
    t = np.arange(n) / SR
    x = RNG.standard_normal(n) * np.exp(-t / 0.002)
    for hz in (330.0, 870.0, 1940.0):
        x += np.sin(2 * np.pi * hz * t) * np.exp(-t / 0.08)
    return _mulaw_roundtrip(x * amp / np.sqrt(np.mean(x**2))).astype(np.float64)


@pytest.mark.parametrize("f0", [70.0, 110.0, 160.0, 240.0, 330.0])
def test_voiced_sounds_are_periodic_at_any_pitch(f0: float) -> None:
    v = periodicity(*frames(voiced(RNG, 4000, f0=f0, glide=0.0)))
    assert np.median(v) >= 0.6


def test_noise_bursts_and_knocks_at_the_same_level_are_not() -> None:
    p = AmdParams()
    static = periodicity(*frames(noise_burst(0.5)))
    knocks = periodicity(*frames(knock(0.3)))
    assert static.max() < p.vad_min_periodicity
    # A knock's ringing is mostly below the bar (a frame may just reach it; the detector test
    # below shows a knock starts no speech).
    assert np.median(knocks) < p.vad_min_periodicity - 0.05
    # The same voiced sound is well above the bar, and silence is 0.
    assert np.median(periodicity(*frames(voiced(RNG, 4000)))) > p.vad_min_periodicity + 0.2
    assert periodicity(*frames(np.zeros(800))).max() == 0.0


def test_periodicity_of_a_batch_is_each_rows_own() -> None:
    # DetectorBank measures several calls at once: each row must come out as it does alone.
    prev, cur = frames(np.concatenate([voiced(RNG, 1600), noise_burst(0.2), knock(0.2)]))
    batch = periodicity(prev, cur)
    alone = np.array([periodicity(prev[i : i + 1], cur[i : i + 1])[0] for i in range(cur.shape[0])])
    assert np.array_equal(batch, alone)


def hello() -> np.ndarray:
    return np.concatenate([voiced(RNG, int(0.25 * SR)), sil(0.05), voiced(RNG, int(0.3 * SR), glide=120.0)])


def test_noise_bursts_after_hello_are_not_more_speech() -> None:
    # "Hello?", then static crackling while the person waits: a person, not a machine reading on.
    # Each crackle is shorter than vad_unvoiced_run_ms (longer unvoiced sound counts as speech).
    crackle = 0.1
    assert crackle * 1000 < AmdParams().vad_unvoiced_run_ms
    parts = [sil(0.4), hello()]
    for _ in range(6):
        parts += [sil(0.5), noise_burst(crackle)]
    det, _ = run(*parts)
    assert det.answered_by == "human"
    assert len(det.segments) == 1  # only the hello is speech: the silence after it goes on
    # The same bursts with the voicing test off are speech, and sentences: a machine.
    off, _ = run(*parts, params=AmdParams().replace(vad_min_periodicity=0.0))
    assert off.answered_by == "machine" and len(off.segments) > 1


def test_knocks_before_a_greeting_are_not_a_short_answer() -> None:
    # A knock in the quiet before a recorded greeting must not pass for a "Hello?" followed by a
    # wait (a person); the greeting after it decides.
    greeting = np.concatenate([np.concatenate([voiced(RNG, int(0.22 * SR), f0=160.0 - 8 * i), sil(0.06)])
                               for i in range(20)])
    det, _ = run(sil(0.2), knock(0.1), sil(1.2), greeting)
    assert det.answered_by == "machine"
    assert det.first_speech_ms >= 1400  # the knock never started speech


def test_voiced_speech_still_starts_at_its_first_frame() -> None:
    # The voicing test delays no onset: the segment starts where the sound does.
    det, _ = run(sil(0.5), voiced(RNG, int(0.4 * SR)), tail=1.0)
    assert det.segments and abs(det.segments[0][0] - 500) <= 40


def test_bank_and_single_calls_agree_with_the_voicing_test() -> None:
    clips = [np.concatenate([sil(0.3), hello(), sil(0.4), noise_burst(0.3), sil(2.0)]),
             np.concatenate([sil(0.2), knock(0.15), sil(0.6), hello(), sil(2.5)]),
             np.concatenate([sil(0.5), noise_burst(0.4), sil(3.0)])]
    n = min(c.size for c in clips) // 160
    pcm = np.stack([np.clip(c[: n * 160], -32768, 32767).astype(np.int16) for c in clips])
    singles = [Detector() for _ in clips]
    bank_dets = [Detector() for _ in clips]
    bank = DetectorBank()
    for k in range(n):
        fr = pcm[:, k * 160 : (k + 1) * 160]
        for d, row in zip(singles, fr, strict=True):
            if not d.done:
                d.feed(row)
        live = [i for i, d in enumerate(bank_dets) if not d.done]
        if live:
            bank.feed([bank_dets[i] for i in live], fr[live])
    for a, b in zip(singles, bank_dets, strict=True):
        assert (a.verdict, a.segments, a._syl.count) == (b.verdict, b.segments, b._syl.count)


def test_a_long_unvoiced_run_and_the_next_word_need_no_voicing() -> None:
    # Whispered or breathy speech has no pitch: a run longer than vad_unvoiced_run_ms is speech
    # anyway, and so is a run that starts within vad_voicing_gap_ms of the last speech.
    p = AmdParams()
    whisper = noise_burst(0.4)
    det, _ = run(sil(0.5), whisper, tail=1.0)
    assert det.segments and abs(det.segments[0][0] - 500) <= 40
    word = noise_burst(0.1)  # too short to pass on its own (see the crackle test)
    gap = (p.vad_voicing_gap_ms - 120) / 1000
    det, _ = run(sil(0.5), hello(), sil(gap), word, tail=1.0)
    assert len(det.segments) == 2 and det.segments[1][0] >= 1100  # the word is speech
    far, _ = run(sil(0.5), hello(), sil(0.6), word, tail=1.0)
    assert len(far.segments) == 1  # the same sound after a sentence-length pause is not


def test_a_ringing_knock_is_not_a_beep_but_a_steady_tone_is() -> None:
    # A knock's partial holds its frequency like a beep but dies away (beep_steady_db).
    t = np.arange(int(0.3 * SR)) / SR
    ring = np.sin(2 * np.pi * 900.0 * t) * 8000.0 * np.exp(-t / 0.06)
    det, events = run(sil(0.5), ring, tail=3.0)
    assert det.verdict is None or det.verdict.cause != "beep"  # (nothing else is heard: no verdict yet)
    steady = np.sin(2 * np.pi * 900.0 * t) * 8000.0
    det, events = run(sil(0.5), steady, tail=3.0)
    assert det.verdict is not None and det.verdict.cause == "beep"
