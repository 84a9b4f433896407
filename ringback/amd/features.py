"""Per-frame features, computed for many calls at once (one numpy pass per 20 ms tick).

For each call we look at its current 20 ms frame and, for frequency resolution, the 40 ms window
made of the previous frame and this one.
"""

from __future__ import annotations

import threading
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
# The speech band for the voice activity detector: below 300 Hz a phone line carries mostly hum,
# rumble (air conditioning, engines, fans) and brown noise, and above 3400 Hz nothing (G.711).
SPEECH_LO_HZ, SPEECH_HI_HZ = 300.0, 3400.0
_SB_LO, _SB_HI = int(SPEECH_LO_HZ / _BIN_HZ), int(SPEECH_HI_HZ / _BIN_HZ) + 1
# One-sided power spectrum of the Hann window -> mean power of the signal (Parseval).
_SMOOTH = 9  # bins of the moving average for the local flatness (225 Hz: at least one harmonic)
_POWER_SCALE = 2.0 / (_NFFT * float(np.sum(_WIN**2)))


@dataclass(slots=True)
class FrameFeatures:
    """Arrays of shape (N,): one value per call."""

    level_db: np.ndarray  # dBFS of the current frame
    peak_hz: np.ndarray  # interpolated frequency of the strongest peak in [lo_hz, hi_hz]
    purity: np.ndarray  # energy near that peak / energy lo_hz..3600 Hz (40 ms window)
    purity2: np.ndarray  # the same for the two strongest peaks together (dual tones score high)
    flatness: np.ndarray  # min/max of 5 ms sub-block energies of the current frame (pre-emphasised); 0 where no spectrum
    band_db: np.ndarray  # dBFS of the 300-3400 Hz speech band (40 ms window); level_db where no spectrum
    band_flatness: np.ndarray  # spectral flatness (geometric / arithmetic mean power) of that band:
    # ~0.56 for any stationary noise, far lower for voiced speech (harmonics); 1.0 where no spectrum
    # (and, with lazy_band_flatness, 1.0 until fill_band_flatness measures the row)
    # Speech-band power spectra of the rows that got a spectrum (``spectral_rows``, in that order),
    # kept so that fill_band_flatness can measure rows later.
    band_power: np.ndarray | None = None
    spectral_rows: np.ndarray | None = None


def frame_features(
    prev: np.ndarray,
    cur: np.ndarray,
    lo_hz: float,
    hi_hz: float,
    spectral_min_dbfs: float = -200.0,
    tone_min_purity: float = -1.0,
    lazy_band_flatness: bool = False,
) -> FrameFeatures:
    """``prev`` and ``cur``: (N, 160) int16 (or float) frames of N calls.

    Frames quieter than ``spectral_min_dbfs`` get no spectrum (peak_hz, purity, purity2 and flatness are 0):
    the detector pays for the FFT only where a tone or speech could be, and most of a call under
    analysis is the quiet before, between and after words.

    Frames whose purity is under ``tone_min_purity`` can be no tone, so they get neither the peak's
    frequency nor the envelope test (peak_hz and flatness 0). With ``lazy_band_flatness`` the speech
    band's flatness is left at 1.0 for ``fill_band_flatness`` to measure only where a voice decision
    needs it. Every value that is measured is the same as without these options.
    """
    # Besides the FFT, the cost per tick is numpy's per-call overhead on small arrays (a few dozen
    # rows) and fresh large temporaries, so the code below keeps both down: per-thread scratch for
    # the windows and spectra, in-place ufuncs, one output block, no Python wrappers (np.add.reduce
    # for .sum, methods for take/argmax/flatnonzero). Every value comes from the same floating-point
    # operations in the same order as before (bit for bit: bench/amd/feature_equiv.py).
    n = cur.shape[0]
    # One block for all outputs: rows level, peak_hz, flatness, purity, purity2, band_db, band_flatness
    # (peak_hz and flatness, and purity..band_db, adjacent: each group is scattered in one call).
    out = np.zeros((7, n))
    out[6] = 1.0
    level = out[0]
    cur_f = np.asarray(cur, dtype=np.float64)
    if np.asarray(cur).dtype.kind in "iu":
        # Integer samples: every partial sum of squares is an integer under 2**53, so einsum's sum is
        # exact and equals mean()'s bit for bit, at a fraction of mean()'s Python-level overhead.
        np.einsum("ij,ij->i", cur_f, cur_f, out=level)
        level /= float(cur_f.shape[1])
    else:
        np.add.reduce(cur_f * cur_f, axis=1, out=level)
        level /= cur_f.shape[1]  # what mean() does after its sum
    level += 1e-3
    np.log10(level, out=level)
    level *= 10.0
    level -= _FULL_SCALE_DB
    f = FrameFeatures(level_db=level, peak_hz=out[1], purity=out[3], purity2=out[4], flatness=out[2],
                      band_db=out[5], band_flatness=out[6])
    loud = (level >= spectral_min_dbfs).nonzero()[0]
    every = loud.size == n
    if not every:
        out[5] = level
        if not loud.size:
            return f
        prev, cur = prev[loud], cur[loud]
    power = _power(prev, cur)
    off = _TOTAL_LO - 1  # bins of ``power`` are offset by this
    lo = max(int(lo_hz / _BIN_HZ), _TOTAL_LO + _PEAK_HALF) - off
    hi = min(int(hi_hz / _BIN_HZ) + 1, _TOTAL_HI - _PEAK_HALF) - off
    # purity, purity2 and band_db of the spectral rows, written in place when every row has one
    res = out[3:6] if every else np.empty((3, loud.size))
    k, fk = _purities(power, lo, hi, res)
    band = power[:, _SB_LO - off : _SB_HI - off]
    _band_level(band, res[2])
    # The peak's frequency and the envelope test only feed the tone test, which needs purity first.
    tone = (res[0] >= tone_min_purity).nonzero()[0]
    if tone.size:
        all_tone = tone.size == loud.size
        if not all_tone:
            k, fk = k[tone], fk[tone]
        ht = np.empty((2, tone.size))  # peak_hz, flatness
        _peak_hz(power, fk, k + off, ht[0])
        if all_tone:
            _envelope_flatness(prev[:, -1], cur, ht[1])
        else:
            _envelope_flatness(prev[tone, -1], cur[tone], ht[1])
        if every and all_tone:
            out[1:3] = ht
        else:
            out[1:3, loud[tone] if not every else tone] = ht
    if not every:
        out[3:6, loud] = res
    if lazy_band_flatness:
        f.band_power, f.spectral_rows = band, loud
        return f
    if every:
        out[6] = _band_flatness(band)
    else:
        out[6, loud] = _band_flatness(band)
    return f


def fill_band_flatness(f: FrameFeatures, rows: np.ndarray) -> None:
    """Measure the speech band's flatness of ``rows`` (call indices that got a spectrum) of features
    made with ``lazy_band_flatness``, in place: the same values frame_features would have given."""
    if not rows.size or f.band_power is None or f.spectral_rows is None or not f.spectral_rows.size:
        return
    have = f.spectral_rows
    pos = np.minimum(have.searchsorted(rows), have.size - 1)  # spectral_rows is sorted (flatnonzero)
    ok = have[pos] == rows  # rows without a spectrum keep 1.0, as frame_features gives them
    if not ok.all():
        rows, pos = rows[ok], pos[ok]
    f.band_flatness[rows] = _band_flatness(f.band_power[pos])


class _Scratch(threading.local):
    """Work arrays of this thread (banks on several media clocks' threads each get their own),
    grown to the largest batch seen: the 40 ms windows and their spectra are not allocated (nor
    their pages faulted in) on every tick. Nothing returned to a caller lives here."""

    def __init__(self) -> None:
        self.win = np.empty((0, _NFFT))
        self.spec = np.empty((0, _NFFT // 2 + 1), dtype=np.complex128)

    def get(self, rows: int) -> tuple[np.ndarray, np.ndarray]:
        if self.win.shape[0] < rows:
            self.win = np.empty((rows, _NFFT))
            self.spec = np.empty((rows, _NFFT // 2 + 1), dtype=np.complex128)
        return self.win[:rows], self.spec[:rows]


_SCRATCH = _Scratch()
_NBINS = _TOTAL_HI + 1 - (_TOTAL_LO - 1)  # bins kept by _power
_row_starts = np.arange(0, 128 * _NBINS, _NBINS)  # flat index of each row of ``power``; grown on demand


def _starts(n: int) -> np.ndarray:
    global _row_starts
    if _row_starts.size < n:
        _row_starts = np.arange(0, n * _NBINS, _NBINS)  # a new array: readers of the old one keep it
    return _row_starts[:n]


def _envelope_flatness(before: np.ndarray, cur: np.ndarray, out: np.ndarray) -> None:
    """Min/max of the 5 ms sub-block energies of the pre-emphasised frame (first difference,
    ``before`` being each row's preceding sample), into ``out``. Pre-emphasis takes 6 dB per octave
    off rumble and hum below the beep band, whose slow waves would otherwise beat with a beep inside
    5 ms blocks; a steady tone stays a steady tone."""
    n = cur.shape[0]
    d = np.empty((n, FRAME_SAMPLES))
    # dtype=float64: the differences in float64, as of float64 copies (int16 would wrap)
    np.subtract(cur[:, 0], before, out=d[:, 0], dtype=np.float64)
    np.subtract(cur[:, 1:], cur[:, :-1], out=d[:, 1:], dtype=np.float64)
    d *= d
    sub = np.add.reduce(d.reshape(n, _SUB, -1), axis=2)
    mx = np.maximum.reduce(sub, axis=1)
    mx += 1e-9
    np.divide(np.minimum.reduce(sub, axis=1), mx, out=out)


def _power(prev: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Power spectra, bins _TOTAL_LO - 1 .. _TOTAL_HI, of the 40 ms windows (prev + cur) of N calls.
    C-contiguous (``_purities`` gathers from it by flat index); a new array (FrameFeatures keeps
    its speech band for fill_band_flatness)."""
    win, spec = _SCRATCH.get(cur.shape[0])
    win[:, :FRAME_SAMPLES] = prev
    win[:, FRAME_SAMPLES:] = cur
    win *= _WIN
    np.fft.rfft(win, axis=1, out=spec)
    # re*re + im*im: every real and imaginary part squared in one contiguous pass (a contiguous
    # ufunc skips numpy's iterator setup), then the kept bins' pairs added (the same two products
    # and one sum per bin).
    v = spec.view(np.float64)
    np.multiply(v, v, out=v)
    return np.add(v[:, 2 * (_TOTAL_LO - 1) : 2 * (_TOTAL_HI + 1) : 2], v[:, 2 * _TOTAL_LO - 1 : 2 * (_TOTAL_HI + 1) : 2])


def _purities(power: np.ndarray, lo: int, hi: int, res: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Strongest peak's bin in [lo, hi) and its flat index in ``power``; its purity and the two
    strongest peaks' purity into res[0] and res[1]. ``power`` is left as it was."""
    n, m = power.shape
    k = power[:, lo:hi].argmax(axis=1)
    k += lo
    fk = k + _starts(n)
    # Peak energy: the main lobe's bins, gathered for all rows at once (no per-row Python loop), by
    # flat index (``power`` is C-contiguous): take/put do what power[rows, lobe] does, for less.
    lobe = np.add.outer(fk, _LOBE)
    lobe_e = power.take(lobe)
    peak_e = np.add.reduce(lobe_e, axis=1)
    total_e = np.add.reduce(power[:, 1:], axis=1)
    # A beep's purity is judged against the band it can be in (from lo_hz up): energy below it is
    # hum and rumble (mains, air conditioning, engines), which would otherwise make a beep under
    # steady low-frequency noise look impure. Dual tones and speech keep the whole band (purity2).
    den = np.add.reduce(power[:, lo - _PEAK_HALF :], axis=1)
    den += 1e-9
    np.divide(peak_e, den, out=res[0])
    # Second peak anywhere in 100..3600 Hz once the first one's main lobe is masked: masked in place
    # and put back (the lobe's values are in lobe_e), cheaper than masking a copy.
    power.put(lobe, 0.0)
    k2 = power.argmax(axis=1)
    power.put(lobe, lobe_e)
    # (np.minimum/np.maximum: np.clip's call overhead is several times theirs at these sizes)
    np.maximum(k2, _PEAK_HALF + 1, out=k2)
    np.minimum(k2, m - _PEAK_HALF - 1, out=k2)
    k2 += _starts(n)
    both = np.add.reduce(power.take(np.add.outer(k2, _LOBE)), axis=1)
    both += peak_e
    total_e += 1e-9
    both /= total_e
    np.minimum(both, 1.0, out=res[1])
    return k, fk


def _peak_hz(power: np.ndarray, fk: np.ndarray, k: np.ndarray, out: np.ndarray) -> None:
    """Parabolic interpolation on log power around flat index ``fk`` of ``power`` (bin ``k`` of the
    rfft), in Hz, into ``out``."""
    abc = power.take(np.add.outer(fk, _NEIGHBOURS))
    abc += 1e-9
    np.log(abc, out=abc)
    a, b, c = abc[:, 0], abc[:, 1], abc[:, 2]
    den = a - 2 * b + c
    delta = np.zeros(fk.size)
    np.divide(0.5 * (a - c), den, out=delta, where=np.abs(den) > 1e-12)
    np.maximum(delta, -0.5, out=delta)
    np.minimum(delta, 0.5, out=delta)
    delta += k
    np.multiply(delta, _BIN_HZ, out=out)


def _band_level(band: np.ndarray, out: np.ndarray) -> None:
    """dBFS of the speech band's power spectra (N, bins), into ``out``."""
    m = band.shape[1]
    np.add.reduce(band, axis=1, out=out)
    out /= m  # mean(), then the same scaling as before
    out *= m * _POWER_SCALE
    out += 1e-3
    np.log10(out, out=out)
    out *= 10.0
    out -= _FULL_SCALE_DB


def _band_flatness(band: np.ndarray) -> np.ndarray:
    """Local spectral flatness of the speech band's power spectra (N, bins).

    Flatness is measured against a moving average over _SMOOTH bins (225 Hz), not the band's mean,
    so that the slope of coloured noise (pink, brown, rumble) does not read as structure: any noise
    scores ~0.56 (exp(-Euler's gamma)), while voiced speech's harmonics, 100-250 Hz apart, make
    peaks and valleys within each 225 Hz and score far lower.
    """
    n, m = band.shape
    c = np.zeros((n, m + 1))
    np.cumsum(band, axis=1, out=c[:, 1:])
    smooth = c[:, _SMOOTH:] - c[:, :-_SMOOTH]  # (n, m - _SMOOTH + 1)
    smooth *= 1.0 / _SMOOTH
    smooth += 1e-9
    mid = band[:, _SMOOTH // 2 : m - _SMOOTH // 2] + 1e-9
    # Geometric over arithmetic mean of mid/smooth, each bin weighted by smooth (the local level):
    # the strong bins (formants, where the harmonics are) decide, not the many weak ones near the
    # band edges that are noise in any frame. With weights smooth/S the arithmetic mean is
    # sum(mid)/S, and the geometric mean exp(sum(smooth * log(mid/smooth)) / S).
    total = np.add.reduce(smooth, axis=1)
    # float32 for the logarithm: numpy vectorises it (float64 goes element by element through
    # libm at several times the cost), and a flatness needs no more than 7 digits. (The ratio is
    # divided in float64 and rounded to float32 on the way out, as astype would.)
    log_ratio = np.divide(mid, smooth, out=np.empty(mid.shape, dtype=np.float32), dtype=np.float64)
    np.log(log_ratio, out=log_ratio)
    log_ratio *= smooth
    r = np.add.reduce(log_ratio, axis=1) / total
    np.exp(r, out=r)
    r *= total
    r /= np.add.reduce(mid, axis=1)
    return r
