"""Pins each app_amd rule on constructed 20 ms frame sequences (V = voice, S = silence)."""

import numpy as np
import pytest

from ringback.amd.app_amd import AppAmd, AppAmdParams, run_app_amd

VOICE = np.full(160, 1000, np.int16)  # mean |x| 1000 >= 256
QUIET_VOICE = np.full(160, 256, np.int16)  # exactly the threshold: voice (silence is "< threshold")
SILENCE = np.full(160, 255, np.int16)  # just under the threshold


def seq(*parts: tuple[np.ndarray, int]) -> np.ndarray:
    """(frame, milliseconds) pieces -> samples."""
    return np.concatenate([np.tile(f, ms // 20) for f, ms in parts])


def test_initial_silence_is_machine_at_2500ms() -> None:
    r = run_app_amd(seq((SILENCE, 3000)))
    assert r.status == "MACHINE" and r.cause == "INITIALSILENCE-2500-2500" and r.decided_at == 2.5


def test_threshold_is_strict_less_than() -> None:
    # Mean |x| of exactly 256 is voice: the greeting starts at once and runs long.
    assert run_app_amd(seq((QUIET_VOICE, 6000))).cause == "LONGGREETING-1500-1500"
    assert run_app_amd(seq((SILENCE, 6000))).cause == "INITIALSILENCE-2500-2500"


def test_short_greeting_then_800ms_silence_is_human() -> None:
    # 300 ms of voice starts the greeting; 800 ms of silence afterwards -> HUMAN.
    r = run_app_amd(seq((SILENCE, 200), (VOICE, 300), (SILENCE, 1000)))
    assert r.status == "HUMAN" and r.cause == "HUMAN-800-800" and r.decided_at == pytest.approx(1.3)


def test_long_greeting_is_machine_at_1500ms_of_voice() -> None:
    r = run_app_amd(seq((SILENCE, 200), (VOICE, 2000)))
    assert r.status == "MACHINE" and r.cause == "LONGGREETING-1500-1500" and r.decided_at == pytest.approx(1.7)


def test_voice_counts_across_words_for_long_greeting() -> None:
    # Words of 400 ms with 100 ms gaps: the 4th word brings words past 2 -> MAXWORDS first.
    r = run_app_amd(seq((SILENCE, 100), *([(VOICE, 400), (SILENCE, 100)] * 4)))
    assert r.status == "MACHINE" and r.cause == "MAXWORDS-3-2"


def test_words_need_minimum_length_and_gap() -> None:
    # Voice bursts of 80 ms (< 100 ms minimum) never count as words nor start the greeting.
    amd = AppAmd()
    for _ in range(10):
        for f in [VOICE] * 4 + [SILENCE] * 3:
            assert amd.feed(f) is None
    assert amd.words == 0 and not amd.in_greeting


def test_first_word_needs_silence_before_it() -> None:
    # The state starts IN_WORD: voice from the first frame is not a word until a 50 ms silence.
    amd = AppAmd()
    for _ in range(6):
        amd.feed(VOICE)
    assert amd.words == 0 and amd.in_greeting
    for _ in range(3):
        amd.feed(SILENCE)
    for _ in range(5):
        amd.feed(VOICE)
    assert amd.words == 1


def test_between_words_silence_under_50ms_keeps_word() -> None:
    amd = AppAmd()
    amd.feed(SILENCE)
    amd.feed(SILENCE)
    amd.feed(SILENCE)
    for _ in range(5):
        amd.feed(VOICE)
    assert amd.words == 1
    amd.feed(SILENCE)  # 20 ms < 50 ms: still the same word
    for _ in range(5):
        amd.feed(VOICE)
    assert amd.words == 1


def test_max_word_length_is_machine() -> None:
    p = AppAmdParams(greeting=100000, total_analysis_time=100000)
    r = run_app_amd(seq((VOICE, 6000)), p)
    assert r.status == "MACHINE" and r.cause == "MAXWORDLENGTH-5000"


def test_total_analysis_time_is_notsure() -> None:
    # Alternate 300 ms voice / 700 ms silence: never 800 ms silence, never 1500 ms... keep words low.
    p = AppAmdParams(maximum_number_of_words=100, greeting=100000)
    r = run_app_amd(seq(*([(VOICE, 300), (SILENCE, 700)] * 6)), p)
    assert r.status == "NOTSURE" and r.cause == "TOOLONG-5000" and r.decided_at == 5.0


def test_silence_duration_resets_on_voice() -> None:
    # 600 ms silence, short voice, 600 ms silence: never 800 in a row -> no HUMAN yet.
    amd = AppAmd()
    for f, ms in [(VOICE, 200), (SILENCE, 600), (VOICE, 200), (SILENCE, 600)]:
        for _ in range(ms // 20):
            assert amd.feed(f) is None
    assert amd.in_greeting


def test_default_parameters_match_asterisk() -> None:
    p = AppAmdParams()
    assert (p.initial_silence, p.greeting, p.after_greeting_silence, p.total_analysis_time,
            p.minimum_word_length, p.between_words_silence, p.maximum_number_of_words,
            p.silence_threshold, p.maximum_word_length) == (2500, 1500, 800, 5000, 100, 50, 2, 256, 5000)


def test_result_maps_to_verdicts() -> None:
    assert run_app_amd(seq((SILENCE, 3000))).answered_by == "machine"
    assert run_app_amd(seq((SILENCE, 200), (VOICE, 300), (SILENCE, 1000))).answered_by == "human"
    assert run_app_amd(seq((SILENCE, 100))).answered_by == "unknown"
