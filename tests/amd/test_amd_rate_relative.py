"""Pause rules relative to the speaker's own syllable rate, on constructed signals (no TTS).

A "syllable" is a burst of broadband noise followed by a short quiet dip (bridged by the speech
hangover), so the syllable count is known and the burst length sets the speaking rate. The same
pause in milliseconds is a sentence pause after fast speech and a comma after slow speech; the
silence that proves a person is measured in the speaker's syllable periods, with a floor.
"""

from __future__ import annotations

import numpy as np
import pytest

from ringback.amd import AmdParams, Detector, Verdict
from tests.amd.amd_voiced import voiced_syllables as _syllables
from tests.support.amd_signals import SR, run, sil

RNG = np.random.default_rng(23)
FAST, SLOW = 0.12, 0.30  # seconds per syllable burst (about 300 and 140 syllables a minute)


def syllables(n: int, syl_s: float, dip_s: float = 0.06, amp: float = 3000.0) -> np.ndarray:
    return _syllables(RNG, n, syl_s, dip_s, amp)


def test_syllable_period_follows_the_speakers_pace_and_starts_at_the_prior() -> None:
    p = AmdParams()
    assert Detector(p).syllable_period_ms() == p.rate_prior_period_ms  # nothing heard yet
    fast, _ = run(sil(0.3), syllables(6, FAST), tail=0.3)
    slow, _ = run(sil(0.3), syllables(6, SLOW), tail=0.3)
    assert fast._syl.count >= 5 and slow._syl.count >= 5
    assert fast.syllable_period_ms() < p.rate_prior_period_ms < slow.syllable_period_ms()
    assert slow.syllable_period_ms() > 1.8 * fast.syllable_period_ms()


def test_the_same_pause_is_a_sentence_pause_when_fast_and_a_comma_when_slow() -> None:
    p = AmdParams()
    pause = 0.42  # over the floor (sentence_pause_ms); under 1.75 periods of the slow speaker
    assert pause * 1000 > p.sentence_pause_ms
    fast, _ = run(sil(0.3), syllables(3, FAST), sil(pause), syllables(3, FAST), tail=0.1)
    slow, _ = run(sil(0.3), syllables(3, SLOW), sil(pause), syllables(3, SLOW), tail=0.1)
    assert fast.sentence_pauses == 1
    assert slow.sentence_pauses == 0


def test_two_slow_sentence_pauses_mean_a_recording_but_slow_commas_do_not() -> None:
    # Slow reading: 0.6 s pauses between sentences (about 2.4 of this speaker's periods, between
    # the sentence-pause and person-silence multiples) -> machine; the same speaker with pauses
    # under one period between phrases is one utterance with commas -> a person.
    det, _ = run(sil(0.3), syllables(3, SLOW), sil(0.6), syllables(3, SLOW), sil(0.6), syllables(3, SLOW))
    assert det.answered_by == "machine" and det.verdict is not None and det.verdict.cause == "sentences"
    det, _ = run(sil(0.3), syllables(3, SLOW), sil(0.25), syllables(3, SLOW), sil(0.25), syllables(2, SLOW))
    assert det.answered_by == "human"


def test_a_short_fast_greeting_is_a_person_soon_after_it_ends() -> None:
    # "Hi, this is Dana." said briskly, then silence: decided within the floor of the silence
    # rule (not the old fixed 650 ms) of the end of speech.
    p = AmdParams()
    x = [sil(0.3), syllables(5, FAST)]
    end = sum(a.size for a in x) / SR
    det, events = run(*x)
    assert det.answered_by == "human"
    v = events[0]
    assert isinstance(v, Verdict) and v.cause == "short-greeting"
    floor = max(p.human_silence_ms, p.human_mid_silence_ms) / 1000
    assert v.decided_at - end <= floor + 0.06
    assert v.decided_at - end < 0.65


def test_a_slow_speaker_must_be_silent_longer_than_a_fast_one() -> None:
    # The same short answer at two paces: the silence that proves a person scales with the pace.
    def wait(syl_s: float) -> float:
        x = [sil(0.3), syllables(4, syl_s)]
        det, events = run(*x)
        assert det.answered_by == "human"
        v = events[0]
        assert isinstance(v, Verdict)
        return v.decided_at - sum(a.size for a in x) / SR

    fast, slow = wait(FAST), wait(SLOW)
    assert slow > fast + 0.2
    assert slow == pytest.approx(fast * 2.0, rel=0.5)


def test_a_slow_sentence_pause_does_not_prove_a_person() -> None:
    # A slow recording: "Hello." then a pause that would prove a person after fast speech (over
    # the floors) but is only ~2.5 of this speaker's periods, then more greeting.
    p = AmdParams()
    pause = 0.6
    assert pause * 1000 > max(p.human_silence_ms, p.human_mid_silence_ms)
    det, _ = run(sil(0.3), syllables(2, SLOW), sil(pause), syllables(p.machine_syllables + 2, SLOW))
    assert det.answered_by == "machine"


def test_how_much_was_said_is_counted_in_syllables_for_the_silence_rule() -> None:
    # After more than human_mid_syllables the long silence tier applies, whatever the seconds.
    p = AmdParams()
    few, _ = run(sil(0.3), syllables(3, FAST))
    many, _ = run(sil(0.3), syllables(p.human_mid_syllables + 2, FAST))
    assert few.answered_by == "human" and many.answered_by == "human"
    assert few._human_silence_needed() < p.human_long_silence_ms <= many._human_silence_needed()
