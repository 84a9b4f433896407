"""Per-frame features, computed for many calls at once (one numpy pass per 20 ms tick).

For each call we look at its current 20 ms frame and, for frequency resolution, the 40 ms window
made of the previous frame and this one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ringback.amd.params import FRAME_SAMPLES, SAMPLE_RATE

_NFFT = 2 * FRAME_SAMPLES  # 40 ms window: 25 Hz bins, refined by interpolation
_WIN = np.hanning(2 * FRAME_SAMPLES).astype(np.float32)
_BIN_HZ = SAMPLE_RATE / _NFFT
_TOTAL_LO, _TOTAL_HI = int(100 / _BIN_HZ), int(3600 / _BIN_HZ) + 1
_PEAK_HALF = 2  # bins either side of the peak: +-50 Hz, the Hann main lobe at 40 ms
_FULL_SCALE_DB = 10.0 * np.log10(32768.0**2 / 2.0)  # full-scale sine = 0 dBFS
_SUB = 4  # sub-blocks per frame for the envelope test (5 ms each)


@dataclass(slots=True)
class FrameFeatures:
    """Arrays of shape (N,): one value per call."""

    level_db: np.ndarray  # dBFS of the current frame
    peak_hz: np.ndarray  # interpolated frequency of the strongest peak in [lo_hz, hi_hz]
    purity: np.ndarray  # energy near that peak / energy 100..3600 Hz (40 ms window)
    purity2: np.ndarray  # the same for the two strongest peaks together (dual tones score high)
    flatness: np.ndarray  # min/max of 5 ms sub-block energies of the current frame


def frame_features(prev: np.ndarray, cur: np.ndarray, lo_hz: float, hi_hz: float) -> FrameFeatures:
    """``prev`` and ``cur``: (N, 160) int16 (or float) frames of N calls."""
    cur_f = cur.astype(np.float32)
    win = np.concatenate([prev.astype(np.float32), cur_f], axis=1) * _WIN
    spec = np.fft.rfft(win, axis=1)[:, _TOTAL_LO - 1 : _TOTAL_HI + 1]
    # Bins from here on are offset by _TOTAL_LO - 1.
    power = spec.real * spec.real + spec.imag * spec.imag
    off = _TOTAL_LO - 1
    lo = max(int(lo_hz / _BIN_HZ), _TOTAL_LO + _PEAK_HALF) - off
    hi = min(int(hi_hz / _BIN_HZ) + 1, _TOTAL_HI - _PEAK_HALF) - off
    k = np.argmax(power[:, lo:hi], axis=1) + lo
    rows = np.arange(power.shape[0])
    # Peak energy: sum over the main lobe via a cumulative sum (no per-row Python loop).
    csum = np.cumsum(power, axis=1)
    peak_e = csum[rows, k + _PEAK_HALF] - csum[rows, k - _PEAK_HALF - 1]
    total_e = csum[:, -1] - csum[:, 0]
    purity = peak_e / (total_e + 1e-9)
    # Second peak anywhere in 100..3600 Hz once the first one's main lobe is masked.
    masked = power.copy()
    for o in range(-_PEAK_HALF, _PEAK_HALF + 1):
        masked[rows, k + o] = 0.0
    k2 = np.clip(np.argmax(masked, axis=1), _PEAK_HALF + 1, power.shape[1] - _PEAK_HALF - 1)
    peak2_e = csum[rows, k2 + _PEAK_HALF] - csum[rows, k2 - _PEAK_HALF - 1]
    purity2 = np.minimum(1.0, (peak_e + peak2_e) / (total_e + 1e-9))
    # Parabolic interpolation on log power for the frequency.
    a = np.log(power[rows, k - 1] + 1e-9)
    b = np.log(power[rows, k] + 1e-9)
    c = np.log(power[rows, k + 1] + 1e-9)
    den = a - 2 * b + c
    delta = np.where(np.abs(den) > 1e-12, 0.5 * (a - c) / np.where(den == 0, 1, den), 0.0)
    peak_hz = (k + off + np.clip(delta, -0.5, 0.5)) * _BIN_HZ
    sq = cur_f * cur_f
    mean_sq = sq.mean(axis=1)
    level_db = 10.0 * np.log10(mean_sq + 1e-3) - _FULL_SCALE_DB
    sub = sq.reshape(sq.shape[0], _SUB, -1).mean(axis=2)
    flatness = sub.min(axis=1) / (sub.max(axis=1) + 1e-9)
    return FrameFeatures(level_db=level_db, peak_hz=peak_hz, purity=purity, purity2=purity2, flatness=flatness)
