"""Noise-robust features on constructed signals: the speech-band level and flatness, the voice
activity decision against steady low-frequency noise, and syllables counted above the noise floor."""

from __future__ import annotations

import numpy as np

from ringback.amd import AmdParams, Detector
from ringback.amd.detector import SyllableCounter
from ringback.amd.features import frame_features

SR = 8000
RNG = np.random.default_rng(7)


def frames_of(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = x.size // 160
    cur = x[: n * 160].reshape(n, 160).astype(np.float64)
    prev = np.vstack([np.zeros((1, 160)), cur[:-1]])
    return prev, cur


def harmonic(f0: float, s: float, dbfs: float) -> np.ndarray:
    """A vowel-like harmonic complex: harmonics of ``f0`` up to 3.4 kHz, falling 6 dB/octave."""
    t = np.arange(int(s * SR)) / SR
    x = sum(np.sin(2 * np.pi * f0 * k * t + RNG.uniform(0, 6.3)) / k for k in range(1, int(3400 / f0)))
    return x * (32768.0 * 10 ** (dbfs / 20) / np.sqrt(2) / np.sqrt(np.mean(x**2)))


def rumble(s: float, dbfs: float) -> np.ndarray:
    """Steady low-frequency noise (air conditioning): white noise through a 2nd-order low-pass at 150 Hz."""
    n = int(s * SR)
    spec = np.fft.rfft(RNG.standard_normal(n))
    spec /= 1.0 + (np.fft.rfftfreq(n, 1 / SR) / 150.0) ** 2
    x = np.fft.irfft(spec, n)
    return x * (32768.0 * 10 ** (dbfs / 20) / np.sqrt(2) / np.sqrt(np.mean(x**2)))


def white(s: float, dbfs: float) -> np.ndarray:
    x = RNG.standard_normal(int(s * SR))
    return x * (32768.0 * 10 ** (dbfs / 20) / np.sqrt(2))


def test_band_level_is_calibrated_and_ignores_rumble() -> None:
    t = np.arange(1600) / SR
    f = frame_features(*frames_of(np.sin(2 * np.pi * 1000 * t) * 32768 * 0.1), 250.0, 2550.0)
    assert np.allclose(f.band_db[1:], -20.0, atol=0.1)  # same dBFS scale as level_db
    f = frame_features(*frames_of(rumble(1.0, -20.0)), 250.0, 2550.0)
    assert np.median(f.level_db - f.band_db) > 8.0  # the rumble's energy is below the speech band


def test_band_flatness_tells_harmonics_from_noise_of_any_colour() -> None:
    p = AmdParams()
    for x in (white(1.0, -25.0), rumble(1.0, -25.0)):
        f = frame_features(*frames_of(x), 250.0, 2550.0)
        assert np.percentile(f.band_flatness[1:], 5) > p.vad_voiced_max_flatness
    for f0 in (110.0, 220.0):
        f = frame_features(*frames_of(harmonic(f0, 1.0, -25.0)), 250.0, 2550.0)
        assert np.median(f.band_flatness[1:]) < p.vad_voiced_max_flatness


def run(x: np.ndarray, params: AmdParams | None = None) -> Detector:
    det = Detector(params)
    pcm = np.clip(x, -32768, 32767).astype(np.int16)
    for i in range(pcm.size // 160):
        det.feed(pcm[i * 160 : (i + 1) * 160])
        if det.done:
            break
    return det


def test_voice_under_loud_rumble_is_heard() -> None:
    # A 0.5 s vowel 6 dB *below* the rumble overall: full-band energy barely moves, but in the
    # speech band it stands far above the rumble's floor.
    noise = rumble(4.0, -25.0)
    x = noise.copy()
    x[SR : SR + SR // 2] += harmonic(150.0, 0.5, -31.0)
    det = run(x)
    assert det.first_speech_ms >= 0 and abs(det.first_speech_ms - 1000) <= 100
    assert run(noise).first_speech_ms < 0  # the rumble alone is not speech


def test_voiced_frames_need_less_snr_than_noise() -> None:
    # The frame rule on constructed feature values: 7 dB over the band's floor is speech when
    # voiced (flatness under the limit), not when noise-like; 9 dB is speech either way; nothing
    # under vad_min_dbfs is speech; the voiced rule can be turned off.
    det = Detector()
    p = det.params
    floor = -40.0
    assert det._is_voice(-30.0, floor + 7.0, p.vad_voiced_max_flatness - 0.05, floor)
    assert not det._is_voice(-30.0, floor + 7.0, 0.56, floor)
    assert not det._is_voice(-30.0, floor + p.vad_voiced_snr_db - 0.5, 0.1, floor)
    assert det._is_voice(-30.0, floor + p.vad_snr_db, 0.56, floor)
    assert not det._is_voice(p.vad_min_dbfs - 1.0, floor + 20.0, 0.1, floor)
    off = Detector(AmdParams(vad_voiced_max_flatness=0.0))
    assert not off._is_voice(-30.0, floor + 7.0, 0.1, floor)


def test_syllables_below_floor_margin_do_not_count() -> None:
    # Level wobbling by 6 dB just above the noise floor (noise under speech): no nuclei with the
    # floor clamp, several without it.
    wobble = [-50.0, -50.0, -44.0, -44.0] * 5
    plain = SyllableCounter(4.0)
    clamped = SyllableCounter(4.0, 6.0)
    for lv in wobble:
        plain.step(lv, True)
        clamped.step(lv, True, floor=-50.0)
    assert plain.count >= 3
    assert clamped.count == 0
    # Peaks well above floor + margin still count.
    for lv in [-50.0, -30.0, -45.0] * 3 + [-50.0, -50.0]:
        clamped.step(lv, True, floor=-50.0)
    assert clamped.count == 3


def test_beep_under_loud_rumble_is_found() -> None:
    # A 1 kHz beep as loud as steady rumble: the rumble (below the beep band) must make the beep
    # look neither impure (purity) nor unsteady (5 ms envelope).
    x = rumble(5.0, -25.0)
    t = np.arange(int(0.3 * SR)) / SR
    x[SR : SR + t.size] += np.sin(2 * np.pi * 1000.0 * t) * 32768 * 10 ** (-25 / 20)
    det = run(x)
    assert det.answered_by == "machine" and det.verdict is not None and det.verdict.cause == "beep"
    assert det.beep_end_s is not None and abs(det.beep_end_s - 1.3) <= 0.05
