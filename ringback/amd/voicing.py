"""Voicing (periodicity) of a frame, for many calls at once.

A voiced sound (a vowel, a nasal) is a train of glottal pulses every pitch period (2.5-20 ms for
voices of 50-400 Hz) shaped by the vocal tract's resonances. Noise of any colour does not repeat,
and neither do bursts of it (static, rustling, typing); a knock or a clink does ring, but as a few
inharmonic partials, which are resonances with no pulse train behind them.

The measure (after the classic SIFT pitch detector): a linear predictor of order ``LPC_ORDER``
fitted to the 40 ms window (the previous frame and this one) takes the resonances out, formants
and a clink's partials alike; what is left of a vowel is its pulse train, which repeats at the
pitch period, and what is left of noise or a knock is noise (a knock's click is one impulse). The
value is the residual's normalised autocorrelation at its best lag between a 400 Hz and a 50 Hz
voice's period. Vowels score about 0.5-1, noise and knocks about 0.1-0.4.
"""

from __future__ import annotations

import numpy as np

from ringback.amd.params import FRAME_SAMPLES, SAMPLE_RATE

PITCH_MIN_HZ, PITCH_MAX_HZ = 50.0, 400.0
LPC_ORDER = 12  # six resonances: a voice's formants in 0-4 kHz, or a clink's few partials
_WIN = 2 * FRAME_SAMPLES  # the 40 ms window the spectral features use
_RES = _WIN - LPC_ORDER  # residual samples (the predictor needs LPC_ORDER samples of history)
_LAG_MIN = int(SAMPLE_RATE / PITCH_MAX_HZ)  # 20 samples
_LAG_MAX = int(np.ceil(SAMPLE_RATE / PITCH_MIN_HZ))  # 160 samples
_NFFT = 512  # >= _RES + _LAG_MAX
_HANN = np.hanning(_WIN)  # for fitting the predictor (autocorrelation method)
_TOEPLITZ = np.abs(np.arange(LPC_ORDER)[:, None] - np.arange(LPC_ORDER)[None, :])
_WHITE_NOISE = 1e-4  # added to the lag-0 term: keeps the predictor stable on tones and silence
# A lag-k product sums _RES - k terms: scale it back to a per-term mean, so long lags (low voices)
# are not penalised against short ones.
_LAG_SCALE = _RES / (_RES - np.arange(_LAG_MIN, _LAG_MAX + 1, dtype=np.float64))


def _windows(x: np.ndarray, width: int, count: int, start: int = 0) -> np.ndarray:
    """(N, count, width) view of C-contiguous ``x``: row n, window k is x[n, start + k : start + k +
    width] (no copy; cheaper to make than sliding_window_view, which matters at a few calls a tick)."""
    s0, s1 = x.strides
    return np.ndarray((x.shape[0], count, width), x.dtype, x, start * s1, (s0, s1, s1))


def periodicity(prev: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """``prev``, ``cur``: (N, 160) frames of N calls. Returns (N,) values in [0, 1]: the linear
    prediction residual's normalised autocorrelation at its best pitch lag (0 for silence)."""
    n = cur.shape[0]
    x = np.empty((n, _WIN))
    x[:, :FRAME_SAMPLES] = prev
    x[:, FRAME_SAMPLES:] = cur
    # The predictor from the Hann-windowed autocorrelation, lags 0..LPC_ORDER (normal equations
    # solved for all rows in one call).
    pad = np.zeros((n, _WIN + LPC_ORDER))
    xw = pad[:, :_WIN]
    np.multiply(x, _HANN, out=xw)
    r = np.einsum("nkj,nj->nk", _windows(pad, _WIN, LPC_ORDER + 1), xw)
    r[:, 0] = r[:, 0] * (1.0 + _WHITE_NOISE) + 1e-3
    a = np.linalg.solve(r[:, _TOEPLITZ], -r[:, 1:, None])  # x[t] ~ -sum_k a_k x[t-k], (N, order, 1)
    # Residual e[t] = x[t] + sum_k a_k x[t-k]: one dot product per sample over a sliding window.
    coef = np.ones((n, LPC_ORDER + 1))
    coef[:, :LPC_ORDER] = a[:, ::-1, 0]
    e = np.einsum("ntj,nj->nt", _windows(x, LPC_ORDER + 1, _RES), coef)
    # Its autocorrelation (zero-padded to _NFFT: linear, not circular, at the lags looked at).
    spec = np.fft.rfft(e, _NFFT, axis=1)
    power = spec.real * spec.real
    power += spec.imag * spec.imag
    ac = np.fft.irfft(power, _NFFT, axis=1)
    r0 = ac[:, 0]
    ac = ac[:, _LAG_MIN : _LAG_MAX + 1] * _LAG_SCALE
    return np.maximum(ac.max(axis=1), 0.0) / np.maximum(r0, 1e-9)
