"""Per-frame features, computed for many calls at once (one numpy pass per 20 ms tick).

For each call we look at its current 20 ms frame and, for frequency resolution, the 40 ms window
made of the previous frame and this one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ringback.amd.params import FRAME_SAMPLES, SAMPLE_RATE

_NFFT = 2 * FRAME_SAMPLES  # 40 ms window: 25 Hz bins, refined by interpolation
# float64 throughout: numpy's pocketfft is about 4x slower on float32 rows of this size.
_WIN = np.hanning(2 * FRAME_SAMPLES)
_BIN_HZ = SAMPLE_RATE / _NFFT
_TOTAL_LO, _TOTAL_HI = int(100 / _BIN_HZ), int(3600 / _BIN_HZ) + 1
_PEAK_HALF = 2  # bins either side of the peak: +-50 Hz, the Hann main lobe at 40 ms
_FULL_SCALE_DB = 10.0 * np.log10(32768.0**2 / 2.0)  # full-scale sine = 0 dBFS
_SUB = 4  # sub-blocks per frame for the envelope test (5 ms each)
_LOBE = np.arange(-_PEAK_HALF, _PEAK_HALF + 1)  # bin offsets of a peak's main lobe
_NEIGHBOURS = np.array([-1, 0, 1])  # bins for the parabolic frequency estimate


@dataclass(slots=True)
class FrameFeatures:
    """Arrays of shape (N,): one value per call."""

    level_db: np.ndarray  # dBFS of the current frame
    peak_hz: np.ndarray  # interpolated frequency of the strongest peak in [lo_hz, hi_hz]
    purity: np.ndarray  # energy near that peak / energy 100..3600 Hz (40 ms window)
    purity2: np.ndarray  # the same for the two strongest peaks together (dual tones score high)
    flatness: np.ndarray  # min/max of 5 ms sub-block energies of the current frame


def frame_features(
    prev: np.ndarray, cur: np.ndarray, lo_hz: float, hi_hz: float, spectral_min_dbfs: float = -200.0
) -> FrameFeatures:
    """``prev`` and ``cur``: (N, 160) int16 (or float) frames of N calls.

    Frames quieter than ``spectral_min_dbfs`` get no spectrum (peak_hz, purity and purity2 are 0):
    the detector pays for the FFT only where a tone or speech could be, and most of a call under
    analysis is the quiet before, between and after words.
    """
    n = cur.shape[0]
    cur_f = np.asarray(cur, dtype=np.float64)
    sq = cur_f * cur_f
    sub = sq.reshape(n, _SUB, -1).mean(axis=2)
    level_db = 10.0 * np.log10(sub.mean(axis=1) + 1e-3) - _FULL_SCALE_DB
    flatness = sub.min(axis=1) / (sub.max(axis=1) + 1e-9)
    peak_hz, purity, purity2 = np.zeros(n), np.zeros(n), np.zeros(n)
    loud = np.flatnonzero(level_db >= spectral_min_dbfs)
    if loud.size == n:
        peak_hz, purity, purity2 = _spectral(prev, cur, lo_hz, hi_hz)
    elif loud.size:
        peak_hz[loud], purity[loud], purity2[loud] = _spectral(prev[loud], cur[loud], lo_hz, hi_hz)
    return FrameFeatures(level_db=level_db, peak_hz=peak_hz, purity=purity, purity2=purity2, flatness=flatness)


def _spectral(prev: np.ndarray, cur: np.ndarray, lo_hz: float, hi_hz: float) -> tuple[np.ndarray, ...]:
    """Peak frequency, purity and two-peak purity of the 40 ms windows (prev + cur) of N calls."""
    n = cur.shape[0]
    win = np.empty((n, 2 * FRAME_SAMPLES))
    win[:, :FRAME_SAMPLES] = prev
    win[:, FRAME_SAMPLES:] = cur
    win *= _WIN
    spec = np.fft.rfft(win, axis=1)[:, _TOTAL_LO - 1 : _TOTAL_HI + 1]
    # Bins from here on are offset by _TOTAL_LO - 1.
    power = spec.real * spec.real
    power += spec.imag * spec.imag
    off = _TOTAL_LO - 1
    lo = max(int(lo_hz / _BIN_HZ), _TOTAL_LO + _PEAK_HALF) - off
    hi = min(int(hi_hz / _BIN_HZ) + 1, _TOTAL_HI - _PEAK_HALF) - off
    k = np.argmax(power[:, lo:hi], axis=1) + lo
    rows = np.arange(n)[:, None]
    # Peak energy: the main lobe's bins, gathered for all rows at once (no per-row Python loop).
    lobe = k[:, None] + _LOBE
    peak_e = power[rows, lobe].sum(axis=1)
    total_e = power[:, 1:].sum(axis=1)
    purity = peak_e / (total_e + 1e-9)
    # Second peak anywhere in 100..3600 Hz once the first one's main lobe is masked.
    masked = power.copy()
    masked[rows, lobe] = 0.0
    # (np.minimum/np.maximum: np.clip's call overhead is several times theirs at these sizes)
    k2 = np.minimum(np.maximum(np.argmax(masked, axis=1), _PEAK_HALF + 1), power.shape[1] - _PEAK_HALF - 1)
    peak2_e = power[rows, k2[:, None] + _LOBE].sum(axis=1)
    purity2 = np.minimum(1.0, (peak_e + peak2_e) / (total_e + 1e-9))
    # Parabolic interpolation on log power for the frequency.
    abc = np.log(power[rows, k[:, None] + _NEIGHBOURS] + 1e-9)
    a, b, c = abc[:, 0], abc[:, 1], abc[:, 2]
    den = a - 2 * b + c
    delta = np.zeros(n)
    np.divide(0.5 * (a - c), den, out=delta, where=np.abs(den) > 1e-12)
    peak_hz = (k + off + np.minimum(np.maximum(delta, -0.5), 0.5)) * _BIN_HZ
    return peak_hz, purity, purity2
