"""frame_features pinned on constructed signals: a tone's frequency and purity, noise's low purity,
silence at the floor level, and a batch equal, bit for bit, to the same calls one row at a time
(the detector bank and the single-call detector must agree; the features keep per-thread scratch
arrays, which must not leak from one call or batch size into another)."""

from __future__ import annotations

import numpy as np

from ringback.amd.features import FrameFeatures, fill_band_flatness, frame_features

SR = 8000
FIELDS = ("level_db", "peak_hz", "purity", "purity2", "flatness", "band_db", "band_flatness")
# The detector's gates (AmdParams defaults): spectral floor, peak search band, tone purity.
GATE = (250.0, 2550.0, -45.0, 0.8)


def tone(hz: float, dbfs: float, n: int = 320, phase: float = 0.3) -> np.ndarray:
    t = np.arange(n) / SR
    return np.round(np.sin(2 * np.pi * hz * t + phase) * 32767 * 10 ** (dbfs / 20)).astype(np.int16)


def frames(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(prev, cur) of the second 20 ms frame of ``x``, as (1, 160) rows."""
    return x[None, :160], x[None, 160:320]


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and bool(np.array_equal(a.view(np.uint8), b.view(np.uint8)))


def test_tone_gives_its_frequency_and_high_purity() -> None:
    for hz in (440.0, 1000.0, 1400.0, 2100.0):
        f = frame_features(*frames(tone(hz, -20.0)), *GATE)
        assert abs(float(f.peak_hz[0]) - hz) < 5.0
        assert f.purity[0] > 0.95 and f.purity2[0] > 0.95
        assert f.flatness[0] > 0.8  # a steady tone's 5 ms blocks hold the same energy
        assert abs(float(f.level_db[0]) + 20.0) < 0.2


def test_white_noise_has_low_purity() -> None:
    rng = np.random.default_rng(3)
    x = np.round(rng.standard_normal(320) * 3000).astype(np.int16)
    f = frame_features(*frames(x), 250.0, 2550.0)
    assert f.purity[0] < 0.2 and f.purity2[0] < 0.3
    assert f.band_flatness[0] > 0.35  # no harmonics


def test_silence_is_at_the_floor_and_gets_no_spectrum() -> None:
    x = np.zeros(320, dtype=np.int16)
    f = frame_features(*frames(x), *GATE, lazy_band_flatness=True)
    floor = 10.0 * np.log10(1e-3) - 10.0 * np.log10(32768.0**2 / 2.0)
    assert float(f.level_db[0]) == floor
    assert f.band_db[0] == f.level_db[0]
    assert f.peak_hz[0] == f.purity[0] == f.purity2[0] == f.flatness[0] == 0.0
    assert f.band_flatness[0] == 1.0
    assert f.spectral_rows is None or f.spectral_rows.size == 0


def _mixed_batch(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Tones, noise, speech-like harmonics and silence, at random levels."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            x = tone(float(rng.uniform(300, 2500)), float(rng.uniform(-40, -10)), phase=float(rng.uniform(0, 6)))
        elif kind == 1:
            x = np.round(rng.standard_normal(320) * 10 ** rng.uniform(1, 3.5)).astype(np.int16)
        elif kind == 2:
            f0 = float(rng.uniform(90, 250))
            t = np.arange(320) / SR
            h = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) / k for k in range(1, int(3400 / f0)))
            x = np.round(h * 10 ** rng.uniform(2, 3.5)).astype(np.int16)
        else:
            x = np.zeros(320, dtype=np.int16)
        rows.append(x)
    x = np.stack(rows)
    return np.ascontiguousarray(x[:, :160]), np.ascontiguousarray(x[:, 160:])


def test_batch_equals_single_rows_bit_for_bit() -> None:
    for n, seed in ((37, 1), (100, 2), (5, 3), (37, 4)):  # sizes change, then repeat: scratch reuse
        prev, cur = _mixed_batch(n, seed)
        for lazy in (False, True):
            batch = frame_features(prev, cur, *GATE, lazy_band_flatness=lazy)
            singles = [frame_features(prev[i : i + 1], cur[i : i + 1], *GATE, lazy_band_flatness=lazy)
                       for i in range(n)]
            if lazy:
                rows = np.arange(0, n, 3)
                fill_band_flatness(batch, rows)
                for i in rows:
                    fill_band_flatness(singles[i], np.zeros(1, dtype=np.intp))
            for name in FIELDS:
                one = np.concatenate([getattr(s, name) for s in singles])
                assert same_bits(getattr(batch, name), one), (n, lazy, name)
        # The default options measure every row: the same values where the gated call measured them.
        full = frame_features(prev, cur, 250.0, 2550.0)
        gated = frame_features(prev, cur, *GATE)
        got = np.flatnonzero(gated.purity)
        for name in ("purity", "purity2", "band_db", "band_flatness"):
            assert same_bits(getattr(full, name)[got], getattr(gated, name)[got])


def test_results_are_not_overwritten_by_later_calls() -> None:
    prev, cur = _mixed_batch(40, 5)
    first: FrameFeatures = frame_features(prev, cur, *GATE, lazy_band_flatness=True)
    kept = {name: getattr(first, name).copy() for name in FIELDS}
    for seed in (6, 7):
        frame_features(*_mixed_batch(40, seed), *GATE, lazy_band_flatness=True)
    for name in FIELDS:
        assert same_bits(getattr(first, name), kept[name]), name
    # The kept spectra still measure what they measured: fill after other calls equals fill at once.
    rows = np.arange(40)
    fill_band_flatness(first, rows)
    again = frame_features(prev, cur, *GATE, lazy_band_flatness=True)
    fill_band_flatness(again, rows)
    assert same_bits(first.band_flatness, again.band_flatness)


def test_float_and_int_samples_agree() -> None:
    prev, cur = _mixed_batch(24, 8)
    a = frame_features(prev, cur, *GATE)
    b = frame_features(prev.astype(np.float64), cur.astype(np.float64), *GATE)
    for name in FIELDS:
        assert same_bits(getattr(a, name), getattr(b, name)), name
