"""This round's rules, on constructed per-frame features (no TTS): a beep's ragged tail does not
cancel it, a weak beep's wobbling peak does not split it, a high voice's vowel that looks like a
dual tone stays speech (its level moves), and speech fading into noise is held at a lower SNR for a
bounded time."""

from __future__ import annotations

from ringback.amd import AmdParams, Detector
from ringback.amd.beep import BeepTracker
from ringback.amd.params import FRAME_MS

P = AmdParams()


def feed_tracker(bt: BeepTracker, frames: list[tuple[bool, float]], t0: int = 1000) -> list[tuple[int, float]]:
    """(is_tone, hz) per frame, with no sound around; returns the confirmed beeps."""
    found = []
    for i, (is_tone, hz) in enumerate(frames):
        t = t0 + i * FRAME_MS
        bt.step(t, is_tone, hz, -(1 << 30))
        b = bt.confirm(t, 0)
        if b is not None:
            found.append(b)
    return found


def test_a_beeps_ragged_tail_does_not_cancel_it() -> None:
    # 300 ms at 1000 Hz; its last frame fails the envelope test (a dropout), and the next frame
    # still holds the tone's tail in its 40 ms window, the peak smeared 3.5 Hz: that is the same
    # tone, not the first of a sequence.
    frames = [(True, 1000.0)] * 15 + [(False, 0.0), (True, 1003.5)] + [(False, 0.0)] * 10
    found = feed_tracker(BeepTracker(P), frames)
    assert len(found) == 1
    end, hz = found[0]
    assert end == 1000 + 15 * FRAME_MS and abs(hz - 1000.0) < 1.0


def test_a_different_tone_right_after_one_is_still_a_sequence() -> None:
    # The sequence rule (SIT) is untouched: another frequency right after a tone cancels it.
    frames = [(True, 1000.0)] * 15 + [(True, 1400.0)] * 3 + [(False, 0.0)] * 10
    assert feed_tracker(BeepTracker(P), frames) == []


def test_a_weak_beeps_wobbling_peak_does_not_split_it() -> None:
    # A 400 Hz beep in noise: its interpolated peak jumps 2.6 Hz for one frame (past
    # beep_max_step_hz, within beep_freq_tol_hz). Once the tone has held beep_min_ms that frame is
    # a dropout, so the beep is found whole, its end where it really ends.
    hz = [400.0, 400.4, 399.8, 400.3, 402.9, 400.1, 399.6, 400.2, 399.9, 400.3]
    frames = [(True, h) for h in hz] + [(False, 0.0)] * 10
    found = feed_tracker(BeepTracker(P), frames)
    assert len(found) == 1 and found[0][0] == 1000 + len(hz) * FRAME_MS


def test_a_gliding_tone_still_ends_on_its_glide() -> None:
    # A held vowel glides ~4 Hz a frame: the wobble allowance covers one frame, not a glide, so
    # the run never holds together long enough to pass for one beep of its whole length.
    frames = [(True, 300.0 - 4.0 * i) for i in range(12)] + [(False, 0.0)] * 10
    found = feed_tracker(BeepTracker(P), frames)
    assert all(end - 1000 < 12 * FRAME_MS for end, _ in found)


def step(det: Detector, n: int, band: float, purity2: float = 0.3, band_flat: float = 1.0) -> None:
    """``n`` frames of broadband sound (never a beep) at ``band`` dBFS in the speech band."""
    for _ in range(n):
        det.step(band, 0.0, 0.2, purity2, 0.0, band, band_flat)


def settled(p: AmdParams = P) -> Detector:
    det = Detector(p)
    step(det, 80, -48.0)  # 1.6 s of line noise: the noise floor settles at -48 dBFS
    return det


def test_a_high_voices_vowel_with_two_strong_harmonics_stays_speech() -> None:
    # f0 ~300 Hz: nearly all the energy in two harmonics (purity2 over the dual-tone bar) for
    # 200 ms, but the level moves like speech does, frame to frame.
    det = settled()
    for band in (-30.0, -24.0, -29.0, -22.0, -27.0, -33.0, -25.0, -31.0, -24.0, -29.0):
        step(det, 1, band, purity2=0.96)
    assert det._in_speech and det.segments


def test_a_dual_tone_at_a_steady_level_is_never_speech() -> None:
    det = settled()
    step(det, 50, -25.0, purity2=0.95)  # one second of ringback
    assert not det.segments
    # Its ragged onset (a first frame at a lower level) does not make speech either.
    det = settled()
    step(det, 1, -33.0, purity2=0.95)
    step(det, 50, -25.0, purity2=0.95)
    assert not det.segments
    # Without the level test (a huge allowed step) the high voice above would be cut as a tone.
    det = settled(P.replace(dual_tone_max_step_db=100.0))
    for band in (-30.0, -24.0, -29.0, -22.0, -27.0, -33.0, -25.0, -31.0, -24.0, -29.0):
        step(det, 1, band, purity2=0.96)
    assert not det.segments


def speech_end_after_fade(p: AmdParams, fade_frames: int) -> int:
    det = settled(p)
    step(det, 10, -25.0)  # 200 ms of speech, 23 dB over the floor
    start = det.t_ms
    step(det, fade_frames, -41.0)  # then 7 dB over the floor: too weak to start speech
    step(det, 30, -48.0)
    assert len(det.segments) == 1
    return det.segments[0][1] - start


def test_speech_fading_into_noise_is_held_for_vad_hold_ms() -> None:
    held = speech_end_after_fade(P, 5)  # a 100 ms word tail
    assert held == 5 * FRAME_MS
    assert speech_end_after_fade(P.replace(vad_hold_snr_db=99.0), 5) == 0  # without the hold: cut


def test_the_hold_is_bounded_so_noise_alone_cannot_keep_speech_going() -> None:
    held = speech_end_after_fade(P, 100)  # two seconds 6 dB over the floor
    assert held <= P.vad_hold_ms + FRAME_MS
