"""The held-out splits (fresh2..fresh6) share no voice, rate, noise kind or beep frequency (nor pitch,
for fresh2) with the splits the detector was tuned or checked on (no synthesis here: the recipe's
constants only, and the noise and time-stretch helpers)."""

from __future__ import annotations

import numpy as np
import pytest

from ringback.amd import corpus as C


def _rates_and_pitches_before() -> tuple[set[int], set[int]]:
    rates = set(range(130, 230)) | set(range(*C.FRESH_RATES))  # tune/heldout draw 130..229
    pitches = set(range(25, 80)) | set(range(*C.FRESH_PITCHES))
    return rates, pitches


def test_fresh2_uses_nothing_from_the_other_splits() -> None:
    before_voices = set(C.TUNE_VOICES) | set(C.HELD_VOICES) | set(C.FRESH_VOICES)
    before_variants = {v.lower() for _, v in before_voices}
    assert not {v.lower() for _, v in C.FRESH2_VOICES} & before_variants
    assert not set(C.FRESH2_NOISES) & (set(C.TUNE_NOISES) | set(C.HELD_NOISES) | set(C.FRESH_NOISES))
    assert not set(C.FRESH2_BEEPS) & (set(C.TUNE_BEEPS) | set(C.HELD_BEEPS) | set(C.FRESH_BEEPS))
    rates, pitches = _rates_and_pitches_before()
    assert not {r for lo, hi in C.FRESH2_RATE_BANDS for r in range(lo, hi)} & rates
    assert not {p for lo, hi in C.FRESH2_PITCH_BANDS for p in range(lo, hi)} & pitches
    assert C.FRESH2_SEED not in (C.SEED, C.FRESH_SEED)


def test_fresh2_beeps_avoid_the_rejected_fax_bands() -> None:
    # A beep the detector must reject by design would test the recipe, not the detector.
    for hz in C.FRESH2_BEEPS:
        assert abs(hz - 1100.0) > 25.0 and abs(hz - 2100.0) > 25.0


def test_fresh2_builder_draws_from_its_bands() -> None:
    b = C._Builder("fresh2", np.random.default_rng([C.FRESH2_SEED, 3]))
    for _ in range(50):
        voice, rate, pitch, _lvl = b.voice_args()
        assert voice in C.FRESH2_VOICES
        assert any(lo <= rate < hi for lo, hi in C.FRESH2_RATE_BANDS)
        assert any(lo <= pitch < hi for lo, hi in C.FRESH2_PITCH_BANDS)


def test_fresh3_uses_nothing_from_the_other_splits_but_pitch() -> None:
    before_voices = set(C.TUNE_VOICES) | set(C.HELD_VOICES) | set(C.FRESH_VOICES) | set(C.FRESH2_VOICES)
    before_variants = {v.lower() for _, v in before_voices}
    assert not {v.lower() for _, v in C.FRESH3_VOICES} & before_variants
    before_noises = set(C.TUNE_NOISES) | set(C.HELD_NOISES) | set(C.FRESH_NOISES) | set(C.FRESH2_NOISES)
    assert not set(C.FRESH3_NOISES) & before_noises
    before_beeps = set(C.TUNE_BEEPS) | set(C.HELD_BEEPS) | set(C.FRESH_BEEPS) | set(C.FRESH2_BEEPS)
    assert not set(C.FRESH3_BEEPS) & before_beeps
    rates, _ = _rates_and_pitches_before()
    rates |= {r for lo, hi in C.FRESH2_RATE_BANDS for r in range(lo, hi)}
    assert not {r for lo, hi in C.FRESH3_RATE_BANDS for r in range(lo, hi)} & rates
    assert C.FRESH3_SEED not in (C.SEED, C.FRESH_SEED, C.FRESH2_SEED)
    for hz in C.FRESH3_BEEPS:
        assert abs(hz - 1100.0) > 25.0 and abs(hz - 2100.0) > 25.0


def test_fresh3_noises_are_synthesised_at_the_asked_level() -> None:
    rng = np.random.default_rng(0)
    for kind in C.FRESH3_NOISES:
        x = C._noise(kind, 8000, -40.0, rng, C.FRESH3_VOICES)
        rms_db = 20 * np.log10(np.sqrt(np.mean(x**2)) * np.sqrt(2) / 32768.0)
        assert abs(rms_db + 40.0) < 0.1, kind


def test_fresh4_uses_nothing_from_the_other_splits_but_pitch() -> None:
    before_voices = (set(C.TUNE_VOICES) | set(C.HELD_VOICES) | set(C.FRESH_VOICES) | set(C.FRESH2_VOICES)
                     | set(C.FRESH3_VOICES))
    before_variants = {v.lower() for _, v in before_voices}
    assert not {v.lower() for _, v in C.FRESH4_VOICES} & before_variants
    before_noises = (set(C.TUNE_NOISES) | set(C.HELD_NOISES) | set(C.FRESH_NOISES) | set(C.FRESH2_NOISES)
                     | set(C.FRESH3_NOISES))
    assert not set(C.FRESH4_NOISES) & before_noises
    before_beeps = (set(C.TUNE_BEEPS) | set(C.HELD_BEEPS) | set(C.FRESH_BEEPS) | set(C.FRESH2_BEEPS)
                    | set(C.FRESH3_BEEPS))
    assert not set(C.FRESH4_BEEPS) & before_beeps
    rates, _ = _rates_and_pitches_before()
    for bands in (C.FRESH2_RATE_BANDS, C.FRESH3_RATE_BANDS):
        rates |= {r for lo, hi in bands for r in range(lo, hi)}
    assert not {r for lo, hi in C.FRESH4_RATE_BANDS for r in range(lo, hi)} & rates
    assert C.FRESH4_SEED not in (C.SEED, C.FRESH_SEED, C.FRESH2_SEED, C.FRESH3_SEED)
    for hz in C.FRESH4_BEEPS:
        assert abs(hz - 1100.0) > 25.0 and abs(hz - 2100.0) > 25.0


def test_fresh5_uses_no_voice_noise_or_beep_of_the_other_splits() -> None:
    before_voices = (set(C.TUNE_VOICES) | set(C.HELD_VOICES) | set(C.FRESH_VOICES) | set(C.FRESH2_VOICES)
                     | set(C.FRESH3_VOICES) | set(C.FRESH4_VOICES))
    before_variants = {v.lower() for _, v in before_voices}
    assert not {v.lower() for _, v in C.FRESH5_VOICES} & before_variants
    before_noises = (set(C.TUNE_NOISES) | set(C.HELD_NOISES) | set(C.FRESH_NOISES) | set(C.FRESH2_NOISES)
                     | set(C.FRESH3_NOISES) | set(C.FRESH4_NOISES))
    assert not set(C.FRESH5_NOISES) & before_noises
    before_beeps = (set(C.TUNE_BEEPS) | set(C.HELD_BEEPS) | set(C.FRESH_BEEPS) | set(C.FRESH2_BEEPS)
                    | set(C.FRESH3_BEEPS) | set(C.FRESH4_BEEPS))
    assert not set(C.FRESH5_BEEPS) & before_beeps
    # Rates: the earlier splits used all of 60-450 wpm, so fresh5 stays within everyday rates.
    assert all(100 <= lo < hi <= 320 for lo, hi in C.FRESH5_RATE_BANDS)
    assert C.FRESH5_SEED not in (C.SEED, C.FRESH_SEED, C.FRESH2_SEED, C.FRESH3_SEED, C.FRESH4_SEED)
    for hz in C.FRESH5_BEEPS:
        assert abs(hz - 1100.0) > 25.0 and abs(hz - 2100.0) > 25.0


def test_fresh6_uses_no_voice_noise_or_beep_of_the_other_splits() -> None:
    earlier = ("TUNE", "HELD", "FRESH", "FRESH2", "FRESH3", "FRESH4", "FRESH5")
    before_variants = {v.lower() for s in earlier for _, v in getattr(C, f"{s}_VOICES")}
    assert not {v.lower() for _, v in C.FRESH6_VOICES} & before_variants
    assert not set(C.FRESH6_NOISES) & {k for s in earlier for k in getattr(C, f"{s}_NOISES")}
    assert not set(C.FRESH6_BEEPS) & {hz for s in earlier for hz in getattr(C, f"{s}_BEEPS")}
    assert all(100 <= lo < hi <= 320 for lo, hi in C.FRESH6_RATE_BANDS)
    assert C.FRESH6_SEED not in (C.SEED, C.FRESH_SEED, C.FRESH2_SEED, C.FRESH3_SEED, C.FRESH4_SEED, C.FRESH5_SEED)
    for hz in C.FRESH6_BEEPS:
        assert abs(hz - 1100.0) > 25.0 and abs(hz - 2100.0) > 25.0


def test_fresh6_noises_come_in_bursts() -> None:
    # fresh6's news is bursty noise (the detector's known weakness): loud 20 ms frames well above
    # the noise's own median frame, not a steady level.
    for kind in C.FRESH6_NOISES:
        x = C._noise(kind, 6 * C.SR, -40.0, np.random.default_rng(2), C.FRESH6_VOICES)
        fr = x.reshape(-1, 160)
        db = 10 * np.log10((fr**2).mean(axis=1) + 1e-9)
        assert np.percentile(db, 99) - np.median(db) > 20.0, kind


def test_fresh6_dog_barks_are_voiced() -> None:
    # A bark is harmonic (voiced like a syllable): its loudest frames' spectrum has a fundamental
    # in 250-750 Hz with its second harmonic strong too.
    x = C._noise("dog", 6 * C.SR, -30.0, np.random.default_rng(3), C.FRESH6_VOICES)
    fr = x.reshape(-1, 320)
    loud = fr[np.argmax((fr**2).sum(axis=1))]
    spec = np.abs(np.fft.rfft(loud * np.hanning(320), 8000))  # 1 Hz bins
    f0 = 250 + int(np.argmax(spec[250:750]))
    assert spec[2 * f0 - 40 : 2 * f0 + 40].max() > 0.2 * spec[f0]


@pytest.mark.parametrize("split", ["fresh4", "fresh5", "fresh6"])
def test_late_splits_are_at_least_150_clips_in_the_usual_proportions(split: str) -> None:
    counts = C.COUNTS[split]
    assert sum(counts) >= 150
    # people : machines : carriers : silence : fax as in the other held-out splits
    base = C.COUNTS["fresh3"]
    assert all(c * base[0] == b * counts[0] for c, b in zip(counts, base, strict=True))


@pytest.mark.parametrize(("split", "seed", "stream"),
                         [("fresh4", "FRESH4_SEED", 5), ("fresh5", "FRESH5_SEED", 6), ("fresh6", "FRESH6_SEED", 7)])
def test_late_split_builders_draw_from_their_bands(split: str, seed: str, stream: int) -> None:
    tag = split.upper()
    b = C._Builder(split, np.random.default_rng([getattr(C, seed), stream]))
    for _ in range(50):
        voice, rate, _pitch, _lvl = b.voice_args()
        assert voice in getattr(C, f"{tag}_VOICES")
        assert any(lo <= rate < hi for lo, hi in getattr(C, f"{tag}_RATE_BANDS"))


@pytest.mark.parametrize("split", ["fresh4", "fresh5", "fresh6"])
def test_late_split_noises_are_synthesised_at_the_asked_level(split: str) -> None:
    rng = np.random.default_rng(0)
    tag = split.upper()
    for kind in getattr(C, f"{tag}_NOISES"):
        x = C._noise(kind, 8000, -40.0, rng, getattr(C, f"{tag}_VOICES"))
        rms_db = 20 * np.log10(np.sqrt(np.mean(x**2)) * np.sqrt(2) / 32768.0)
        assert abs(rms_db + 40.0) < 0.1, kind


def test_fresh5_siren_glides_through_the_beep_band() -> None:
    # The siren must be a gliding tone (a false-beep trap), not a steady one: its strongest
    # frequency over 6 s spans hundreds of Hz inside the beep band.
    x = C._noise("siren", 6 * C.SR, -20.0, np.random.default_rng(1), C.FRESH5_VOICES)
    peaks = []
    for i in range(0, x.size - 640, 640):
        seg = x[i : i + 640] * np.hanning(640)
        peaks.append(np.argmax(np.abs(np.fft.rfft(seg))) * C.SR / 640)
    assert min(peaks) >= 300.0 and max(peaks) <= 2500.0
    assert max(peaks) - min(peaks) > 400.0


def test_stretch_slows_speech_and_keeps_its_pitch() -> None:
    # Slower than espeak can speak (fresh4) is made by stretching in time: longer by the factor,
    # with a tone's frequency unchanged (resampling would lower it).
    sr = C.SR
    x = np.sin(2 * np.pi * 500.0 * np.arange(sr) / sr) * 8000.0
    y = C._stretch(x, 1.25)
    assert y.size == int(round(x.size * 1.25))
    mid = y[2000:8000]
    spec = np.abs(np.fft.rfft(mid * np.hanning(mid.size)))
    assert abs(np.argmax(spec) * sr / mid.size - 500.0) < 3.0
