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
    n = cur.shape[0]
    cur_f = np.asarray(cur, dtype=np.float64)
    if np.asarray(cur).dtype.kind in "iu":
        # Integer samples: every partial sum of squares is an integer under 2**53, so einsum's sum is
        # exact and equals mean()'s bit for bit, at a fraction of mean()'s Python-level overhead.
        energy = np.einsum("ij,ij->i", cur_f, cur_f) / float(cur_f.shape[1])
    else:
        energy = (cur_f * cur_f).mean(axis=1)
    level_db = 10.0 * np.log10(energy + 1e-3) - _FULL_SCALE_DB
    peak_hz, purity, purity2, flatness = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    band_db, band_flat = level_db.copy(), np.ones(n)
    loud = np.flatnonzero(level_db >= spectral_min_dbfs)
    if not loud.size:
        return FrameFeatures(level_db=level_db, peak_hz=peak_hz, purity=purity, purity2=purity2,
                             flatness=flatness, band_db=band_db, band_flatness=band_flat)
    every = loud.size == n
    prev_l = prev if every else prev[loud]
    cur_l = cur if every else cur[loud]
    power = _power(prev_l, cur_l)
    off = _TOTAL_LO - 1  # bins of ``power`` are offset by this
    lo = max(int(lo_hz / _BIN_HZ), _TOTAL_LO + _PEAK_HALF) - off
    hi = min(int(hi_hz / _BIN_HZ) + 1, _TOTAL_HI - _PEAK_HALF) - off
    k, pu, pu2 = _purities(power, lo, hi)
    band = power[:, _SB_LO - off : _SB_HI - off]
    bdb = _band_level(band)
    # The peak's frequency and the envelope test only feed the tone test, which needs purity first.
    tone = np.flatnonzero(pu >= tone_min_purity)
    if tone.size:
        all_tone = tone.size == loud.size
        hz = _peak_hz(power, tone, k if all_tone else k[tone], off)
        cur_t = cur_l if all_tone else cur_l[tone]
        prev_t = prev_l if all_tone else prev_l[tone]
        fl = _envelope_flatness(np.asarray(prev_t[:, -1], dtype=np.float64), np.asarray(cur_t, dtype=np.float64))
        rows_t = loud[tone]
        peak_hz[rows_t], flatness[rows_t] = hz, fl
    if every:
        purity, purity2, band_db = pu, pu2, bdb
    else:
        purity[loud], purity2[loud], band_db[loud] = pu, pu2, bdb
    if lazy_band_flatness:
        return FrameFeatures(level_db=level_db, peak_hz=peak_hz, purity=purity, purity2=purity2,
                             flatness=flatness, band_db=band_db, band_flatness=band_flat,
                             band_power=band, spectral_rows=loud)
    band_flat[loud] = _band_flatness(band)
    return FrameFeatures(level_db=level_db, peak_hz=peak_hz, purity=purity, purity2=purity2, flatness=flatness,
                         band_db=band_db, band_flatness=band_flat)


def fill_band_flatness(f: FrameFeatures, rows: np.ndarray) -> None:
    """Measure the speech band's flatness of ``rows`` (call indices that got a spectrum) of features
    made with ``lazy_band_flatness``, in place: the same values frame_features would have given."""
    if not rows.size or f.band_power is None or f.spectral_rows is None or not f.spectral_rows.size:
        return
    have = f.spectral_rows
    pos = np.minimum(np.searchsorted(have, rows), have.size - 1)  # spectral_rows is sorted (flatnonzero)
    ok = have[pos] == rows  # rows without a spectrum keep 1.0, as frame_features gives them
    if not ok.all():
        rows, pos = rows[ok], pos[ok]
    f.band_flatness[rows] = _band_flatness(f.band_power[pos])


def _envelope_flatness(before: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Min/max of the 5 ms sub-block energies of the pre-emphasised frame (first difference,
    ``before`` being each row's preceding sample). Pre-emphasis takes 6 dB per octave off rumble
    and hum below the beep band, whose slow waves would otherwise beat with a beep inside 5 ms
    blocks; a steady tone stays a steady tone."""
    d = np.empty_like(cur)
    d[:, 0] = cur[:, 0] - before
    np.subtract(cur[:, 1:], cur[:, :-1], out=d[:, 1:])
    d *= d
    sub = d.reshape(cur.shape[0], _SUB, -1).sum(axis=2)
    return sub.min(axis=1) / (sub.max(axis=1) + 1e-9)


def _power(prev: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Power spectra, bins _TOTAL_LO - 1 .. _TOTAL_HI, of the 40 ms windows (prev + cur) of N calls.
    C-contiguous (``_purities`` gathers from it by flat index)."""
    n = cur.shape[0]
    win = np.empty((n, 2 * FRAME_SAMPLES))
    win[:, :FRAME_SAMPLES] = prev
    win[:, FRAME_SAMPLES:] = cur
    win *= _WIN
    spec = np.fft.rfft(win, axis=1)[:, _TOTAL_LO - 1 : _TOTAL_HI + 1]
    power = spec.real * spec.real
    power += spec.imag * spec.imag
    return power


def _purities(power: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Strongest peak's bin in [lo, hi), its purity and the two strongest peaks' purity."""
    n, m = power.shape
    k = np.argmax(power[:, lo:hi], axis=1) + lo
    # Peak energy: the main lobe's bins, gathered for all rows at once (no per-row Python loop), by
    # flat index (``power`` is C-contiguous): np.take/np.put do what power[rows, lobe] does, for less.
    base = np.arange(0, n * m, m)[:, None]
    lobe = base + k[:, None] + _LOBE
    peak_e = np.take(power, lobe).sum(axis=1)
    total_e = power[:, 1:].sum(axis=1)
    # A beep's purity is judged against the band it can be in (from lo_hz up): energy below it is
    # hum and rumble (mains, air conditioning, engines), which would otherwise make a beep under
    # steady low-frequency noise look impure. Dual tones and speech keep the whole band (purity2).
    purity = peak_e / (power[:, lo - _PEAK_HALF :].sum(axis=1) + 1e-9)
    # Second peak anywhere in 100..3600 Hz once the first one's main lobe is masked.
    masked = power.copy()
    np.put(masked, lobe, 0.0)
    # (np.minimum/np.maximum: np.clip's call overhead is several times theirs at these sizes)
    k2 = np.minimum(np.maximum(np.argmax(masked, axis=1), _PEAK_HALF + 1), m - _PEAK_HALF - 1)
    peak2_e = np.take(power, base + k2[:, None] + _LOBE).sum(axis=1)
    purity2 = np.minimum(1.0, (peak_e + peak2_e) / (total_e + 1e-9))
    return k, purity, purity2


def _peak_hz(power: np.ndarray, rows: np.ndarray, k: np.ndarray, off: int) -> np.ndarray:
    """Parabolic interpolation on log power around bin ``k`` of each of ``rows``, in Hz."""
    n = rows.size
    # Gathered by flat index (``power`` is C-contiguous): no copy of the rows' spectra first.
    abc = np.log(np.take(power, (rows * power.shape[1] + k)[:, None] + _NEIGHBOURS) + 1e-9)
    a, b, c = abc[:, 0], abc[:, 1], abc[:, 2]
    den = a - 2 * b + c
    delta = np.zeros(n)
    np.divide(0.5 * (a - c), den, out=delta, where=np.abs(den) > 1e-12)
    return (k + off + np.minimum(np.maximum(delta, -0.5), 0.5)) * _BIN_HZ


def _band_level(band: np.ndarray) -> np.ndarray:
    """dBFS of the speech band's power spectra (N, bins)."""
    m = band.shape[1]
    return 10.0 * np.log10(band.mean(axis=1) * (m * _POWER_SCALE) + 1e-3) - _FULL_SCALE_DB


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
    smooth = (c[:, _SMOOTH:] - c[:, :-_SMOOTH]) * (1.0 / _SMOOTH) + 1e-9  # (n, m - _SMOOTH + 1)
    mid = band[:, _SMOOTH // 2 : m - _SMOOTH // 2] + 1e-9
    # Geometric over arithmetic mean of mid/smooth, each bin weighted by smooth (the local level):
    # the strong bins (formants, where the harmonics are) decide, not the many weak ones near the
    # band edges that are noise in any frame. With weights smooth/S the arithmetic mean is
    # sum(mid)/S, and the geometric mean exp(sum(smooth * log(mid/smooth)) / S).
    total = smooth.sum(axis=1)
    # float32 for the logarithm: numpy vectorises it (float64 goes element by element through
    # libm at several times the cost), and a flatness needs no more than 7 digits.
    log_ratio = np.log((mid / smooth).astype(np.float32))
    log_ratio *= smooth
    return np.exp(log_ratio.sum(axis=1) / total) * total / mid.sum(axis=1)
