"""Rate-independent speech length (syllable nuclei) and the FFT skipped on quiet frames.

Constructed signals only (no TTS): a "syllable" is a burst of broadband noise followed by a short
quiet dip, so its count is known exactly and its length sets the speaking rate.
"""

from __future__ import annotations

import numpy as np

from ringback.amd import AmdParams, Verdict
from ringback.amd.detector import SyllableCounter, spectral_floor
from ringback.amd.features import frame_features
from tests.amd.amd_voiced import voiced_syllables as _syllables
from tests.support.amd_signals import SR, run, sil

RNG = np.random.default_rng(11)


def syllables(n: int, syl_s: float, dip_s: float = 0.06, amp: float = 3000.0) -> np.ndarray:
    return _syllables(RNG, n, syl_s, dip_s, amp)


# --- the counter on constructed level sequences -----------------------------------------------


def feed(counter: SyllableCounter, levels: list[float], speech: bool = True) -> int:
    for lv in levels:
        counter.step(lv, speech)
    return counter.count


def test_counter_counts_peaks_that_stand_out_by_the_dip() -> None:
    # Three rises of 12 dB with falls between them: three nuclei (each counted on its fall).
    c = SyllableCounter(4.0)
    levels = [-40, -30, -20, -20, -30, -40] * 3
    assert feed(c, [float(v) for v in levels]) == 3


def test_counter_ignores_ripples_smaller_than_the_dip() -> None:
    c = SyllableCounter(4.0)
    feed(c, [-30.0, -20.0])  # the rise to a first peak
    assert feed(c, [-22.0, -20.0, -22.5, -20.0] * 10) == 0  # 2-3 dB ripple: one long vowel
    assert feed(c, [-30.0, -35.0]) == 1  # the fall finally ends it


def test_counter_needs_speech_and_a_new_rise_after_a_pause() -> None:
    c = SyllableCounter(4.0)
    assert feed(c, [-40.0, -20.0, -40.0] * 3, speech=False) == 0  # not speech: not counted
    feed(c, [-40.0, -20.0, -20.0])  # rising inside speech
    feed(c, [-20.0, -60.0, -60.0], speech=False)  # a pause before the fall: the peak is abandoned
    assert feed(c, [-60.0, -60.0]) == 0
    assert feed(c, [-30.0, -20.0, -20.0, -40.0]) == 1


# --- the detector: length in syllables, not seconds ----------------------------------------------


def test_many_syllables_are_a_machine_before_the_voiced_time_backstop() -> None:
    p = AmdParams()
    n = p.machine_syllables + 2
    det, _ = run(sil(0.3), syllables(n, 0.16))  # fast reading: well under machine_speech_ms of voice
    assert det.verdict is not None and det.verdict.cause == "syllables"
    assert det.verdict.answered_by == "machine"
    assert det.voiced_ms < p.machine_speech_ms
    # Off switch: the same audio is no longer decided by syllables.
    off, _ = run(sil(0.3), syllables(n, 0.16), params=p.replace(machine_syllables=0))
    assert off.verdict is not None and off.verdict.cause != "syllables"


def test_a_slow_long_answer_is_a_person() -> None:
    # 12 slow syllables (~3.3 s of voice: more than the old 2.8 s "long speech" rule allowed),
    # then silence: a slow speaker's "Good morning, Acme Dental, this is Sam speaking."
    p = AmdParams()
    det, events = run(sil(0.3), syllables(12, 0.28))
    assert 2800 < det.voiced_ms < p.machine_speech_ms
    assert det.answered_by == "human"
    assert isinstance(events[0], Verdict) and events[0].cause == "short-greeting"


def test_as_many_syllables_said_fast_are_still_a_machine() -> None:
    # The same duration of speech, but fast: the syllable count decides, not the seconds.
    p = AmdParams()
    det, _ = run(sil(0.3), syllables(p.machine_syllables + 3, 0.15))
    assert det.answered_by == "machine" and det.verdict is not None and det.verdict.cause == "syllables"


# --- the FFT is skipped where it cannot matter -----------------------------------------------------


def test_quiet_frames_get_no_spectrum_and_loud_ones_the_same_as_ungated() -> None:
    p = AmdParams()
    t = np.arange(320) / SR
    loud = (np.sin(2 * np.pi * 1000.0 * t) * 8000).astype(np.int16)
    quiet = (RNG.standard_normal(320) * 3).astype(np.int16)  # about -70 dBFS
    prev = np.stack([loud[:160], quiet[:160], loud[:160]])
    cur = np.stack([loud[160:], quiet[160:], loud[160:]])
    gated = frame_features(prev, cur, 250.0, 2550.0, spectral_floor(p))
    full = frame_features(prev, cur, 250.0, 2550.0)
    assert gated.level_db[1] < spectral_floor(p)
    assert gated.peak_hz[1] == 0.0 and gated.purity[1] == 0.0 and gated.purity2[1] == 0.0
    assert gated.flatness[1] == 0.0  # no envelope test either: a quiet frame is never a tone
    assert full.purity[1] > 0.0 and full.flatness[1] > 0.0  # ungated, the quiet row is measured
    for row in (0, 2):
        assert abs(gated.peak_hz[row] - 1000.0) < 3.0
        assert gated.purity[row] == full.purity[row] and gated.purity2[row] == full.purity2[row]
        assert gated.flatness[row] == full.flatness[row]
    np.testing.assert_array_equal(gated.level_db, full.level_db)
