"""In-band DTMF: a vectorised Goertzel detector (spandsp parameters) and a tone generator.

The detector works on many calls at once: each tick feeds an ``(n, 160)`` int16
array (one 20 ms frame per call) and gets back the digits that started. The
single-bin DFTs of the Goertzel bank are computed as one matrix product per
102-sample block for all calls.

Per block, as in spandsp's dtmf_rx: best row and column tone each at least
-42 dBm0, normal twist (row louder) at most 8 dB, reverse twist (column louder)
at most 4 dB, every other row/column tone at least 8 dB below the best,
row + column energy close to the block's total energy (spandsp's -0.85 dB is
in its own scaling; with energies normalised to mean power a tone 1.5 % off
frequency loses up to 1.5 dB in a 102-sample block, so the bound here is
-2 dB, and the frequency check below does the fine work). Two
consecutive agreeing blocks start a digit; a single missed block is ridden
over. Two checks are added so that the Q.24 edges hold with 12.75 ms blocks:
a least-squares fit of both tones on each half block gives each tone's
level free of the other tone's leakage (used for the twist limits),
frequency offset (from the phase advance between halves; rejected beyond
2.5 %, midway between Q.24's accept 1.5 % and reject 3.5 %) and its
steadiness (both halves within 1 dB: a tone that starts or stops inside the
block is not yet a hit, which is what rejects 23 ms bursts); and the two
blocks that start a digit must carry both tones at the same level (1.5 dB)
and frequency (4 Hz), which speech formants gliding through a row/column
pair rarely do.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ringback.media.tones import RATE, dbm0_to_amplitude

ROWS = (697.0, 770.0, 852.0, 941.0)
COLS = (1209.0, 1336.0, 1477.0, 1633.0)
KEYS = ("123A", "456B", "789C", "*0#D")
BLOCK = 102
HALF = BLOCK // 2
FRAME = 160

THRESHOLD_DBM0 = -42.0
NORMAL_TWIST_DB = 8.0
REVERSE_TWIST_DB = 4.0
RELATIVE_PEAK_DB = 8.0
TO_TOTAL_DB = -2.0  # see module docstring
MAX_FREQ_ERROR = 0.025
STEADY_DB = 1.0
BLOCK_TO_BLOCK_DB = 1.5  # the two blocks that start a digit carry the same tone levels
BLOCK_TO_BLOCK_HZ = 4.0  # ... and the same frequencies (speech glides, tones do not)
CONTINUE_DB = -17.0  # an active digit continues while both tones stay within this of their start level


def _db(x: float) -> float:
    return 10 ** (x / 10)


_FREQS = np.array(ROWS + COLS)
_N = np.arange(BLOCK)
# single-bin DFT of every Goertzel frequency, [cos | sin] columns
_BANK = np.concatenate([np.cos(2 * np.pi * _FREQS[None, :] * _N[:, None] / RATE),
                        np.sin(2 * np.pi * _FREQS[None, :] * _N[:, None] / RATE)], axis=1).astype(np.float32)
# mean power of a sine at the threshold level
_THRESHOLD = dbm0_to_amplitude(THRESHOLD_DBM0) ** 2 / 2


def _half_pinv() -> npt.NDArray[np.float64]:
    # least-squares solvers for (row, col) pairs over each half block: [pair, half, 4, HALF]
    out = np.zeros((16, 2, 4, HALF))
    for r in range(4):
        for c in range(4):
            for h in range(2):
                n = np.arange(h * HALF, (h + 1) * HALF)
                w = 2 * np.pi * np.array([ROWS[r], COLS[c]]) / RATE
                basis = np.stack([np.cos(w[0] * n), np.sin(w[0] * n), np.cos(w[1] * n), np.sin(w[1] * n)], axis=1)
                out[r * 4 + c, h] = np.linalg.pinv(basis)
    return out


_PINV = _half_pinv()
_KEYMAP = np.array([[ord(k) for k in row] for row in KEYS], dtype=np.int32)


class DtmfDetector:
    """In-band DTMF detection for ``n`` parallel streams fed 160 samples per tick."""

    def __init__(self, n: int = 1) -> None:
        self.n = 0
        self._resid = np.zeros((0, 0), np.float32)
        self._prev_hit = np.zeros(0, np.int32)
        self._current = np.zeros(0, np.int32)
        self._misses = np.zeros(0, np.int32)
        self._ref = np.zeros((0, 2), np.float64)
        self._amp = np.zeros((0, 2), np.float64)
        self._df = np.zeros((0, 2), np.float64)
        self.resize(n)

    def resize(self, n: int) -> None:
        """Grow or shrink the number of streams (new streams start clean)."""
        old = self.n
        keep = min(old, n)
        resid = np.zeros((n, self._resid.shape[1]), np.float32)
        resid[:keep] = self._resid[:keep]
        self._resid = resid
        for name, fill in (("_prev_hit", -1), ("_current", -1), ("_misses", 0)):
            arr = np.full(n, fill, np.int32)
            arr[:keep] = getattr(self, name)[:keep]
            setattr(self, name, arr)
        ref = np.zeros((n, 2))
        ref[:keep] = self._ref[:keep]
        self._ref = ref
        amp = np.zeros((n, 2))
        amp[:keep] = self._amp[:keep]
        self._amp = amp
        df = np.zeros((n, 2))
        df[:keep] = self._df[:keep]
        self._df = df
        self.n = n

    def reset(self, index: int) -> None:
        """Forget the state of one stream (its slot is being reused)."""
        self._resid[index] = 0
        self._prev_hit[index] = -1
        self._current[index] = -1
        self._misses[index] = 0
        self._ref[index] = 0
        self._amp[index] = 0
        self._df[index] = 0

    def process(self, frames: npt.ArrayLike) -> list[tuple[int, str]]:
        """Feed one ``(n, k)`` block of samples; returns [(stream index, digit)] that started."""
        x = np.asarray(frames)
        if x.ndim == 1:
            x = x[None, :]
        if x.shape[0] != self.n:
            raise ValueError(f"expected {self.n} streams, got {x.shape[0]}")
        buf = np.concatenate([self._resid, x.astype(np.float32)], axis=1)
        blocks = buf.shape[1] // BLOCK
        found: list[tuple[int, str]] = []
        for b in range(blocks):
            found.extend(self._block(buf[:, b * BLOCK : (b + 1) * BLOCK]))
        self._resid = buf[:, blocks * BLOCK :].copy()
        return found

    def _block(self, x: npt.NDArray[np.float32]) -> list[tuple[int, str]]:
        x = x - x.mean(axis=1, keepdims=True)  # DC removal
        total = np.einsum("ij,ij->i", x, x, dtype=np.float64) / BLOCK
        y = (x @ _BANK).astype(np.float64)
        power = (y[:, :8] ** 2 + y[:, 8:] ** 2) * (2.0 / BLOCK**2)
        rows, cols = power[:, :4], power[:, 4:]
        br = rows.argmax(axis=1)
        bc = cols.argmax(axis=1)
        idx = np.arange(self.n)
        pr = rows[idx, br]
        pc = cols[idx, bc]
        ok = (pr >= _THRESHOLD) & (pc >= _THRESHOLD)
        # coarse twist here (block DFTs leak into each other); exact twist on the fit below
        ok &= (pr <= pc * _db(NORMAL_TWIST_DB + 3)) & (pc <= pr * _db(REVERSE_TWIST_DB + 3))
        peak = _db(RELATIVE_PEAK_DB)
        rows_other = rows.copy()
        rows_other[idx, br] = 0
        cols_other = cols.copy()
        cols_other[idx, bc] = 0
        ok &= (rows_other.max(axis=1) * peak < pr) & (cols_other.max(axis=1) * peak < pc)
        ok &= (pr + pc) >= total * _db(TO_TOTAL_DB)
        cand = np.flatnonzero(ok)
        amp = np.zeros((self.n, 2))
        df = np.zeros((self.n, 2))
        if cand.size:
            ok[cand], amp[cand], df[cand] = self._steady_and_on_frequency(x[cand], br[cand] * 4 + bc[cand])
        hit = np.where(ok, br * 4 + bc, -1).astype(np.int32)

        # continuation of active digits: both tones still clearly there
        cur = self._current
        active = cur >= 0
        cont = np.zeros(self.n, bool)
        if active.any():
            a = np.flatnonzero(active)
            cr, cc = cur[a] // 4, cur[a] % 4
            lim = _db(CONTINUE_DB)
            cont[a] = (rows[a, cr] >= self._ref[a, 0] * lim) & (cols[a, cc] >= self._ref[a, 1] * lim)
            cont[a] &= (hit[a] < 0) | (hit[a] == cur[a])
        misses = np.where(cont, 0, self._misses + 1)
        ended = active & (misses >= 2)
        cur = np.where(ended, -1, cur)
        lim = 10 ** (BLOCK_TO_BLOCK_DB / 20)
        same_level = np.all((amp <= self._amp * lim) & (self._amp <= amp * lim), axis=1)
        same_level &= np.all(np.abs(df - self._df) <= BLOCK_TO_BLOCK_HZ, axis=1)
        self._amp = amp
        self._df = df
        start = (hit >= 0) & (hit == self._prev_hit) & (hit != cur) & same_level
        new = np.flatnonzero(start)
        cur = np.where(start, hit, cur)
        misses = np.where(start, 0, misses)
        if new.size:
            self._ref[new, 0] = pr[new]
            self._ref[new, 1] = pc[new]
        self._current = cur
        self._misses = misses
        self._prev_hit = hit
        return [(int(i), chr(_KEYMAP[hit[i] // 4, hit[i] % 4])) for i in new]

    @staticmethod
    def _steady_and_on_frequency(
        x: npt.NDArray[np.float32], pair: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        halves = x.reshape(len(x), 2, HALF).astype(np.float64)
        coef = np.einsum("phkn,phn->phk", _PINV[pair], halves)  # [cand, half, (rc, rs, cc, cs)]
        z = coef[:, :, 0::2] - 1j * coef[:, :, 1::2]  # complex amplitude per half and tone
        mag = np.abs(z)
        steady = np.all(mag[:, 0] <= mag[:, 1] * 10 ** (STEADY_DB / 20), axis=1)
        steady &= np.all(mag[:, 1] <= mag[:, 0] * 10 ** (STEADY_DB / 20), axis=1)
        # twist from the fitted amplitudes of both halves (free of mutual leakage)
        twist = 20 * np.log10(np.maximum(mag[:, :, 0].mean(axis=1), 1e-9) / np.maximum(mag[:, :, 1].mean(axis=1), 1e-9))
        steady &= (twist <= NORMAL_TWIST_DB) & (twist >= -REVERSE_TWIST_DB)
        dphi = np.angle(z[:, 1] * np.conj(z[:, 0]))  # phase advance over HALF samples
        df = dphi * RATE / (2 * np.pi * HALF)
        f0 = np.stack([np.array(ROWS)[pair // 4], np.array(COLS)[pair % 4]], axis=1)
        on_freq = np.all(np.abs(df) <= MAX_FREQ_ERROR * f0, axis=1)
        return steady & on_freq, mag.mean(axis=1), df


def detect(pcm: npt.ArrayLike) -> str:
    """All digits in one int16 8 kHz signal (convenience for tests and tools)."""
    x = np.asarray(pcm, dtype=np.int16)
    pad = (-len(x)) % FRAME
    x = np.concatenate([x, np.zeros(pad + 2 * FRAME, np.int16)])
    det = DtmfDetector(1)
    out = []
    for i in range(0, len(x), FRAME):
        out.extend(d for _, d in det.process(x[None, i : i + FRAME]))
    return "".join(out)


def digit_frequencies(digit: str) -> tuple[float, float]:
    for r, keys in enumerate(KEYS):
        c = keys.find(digit.upper())
        if c >= 0 and len(digit) == 1:
            return ROWS[r], COLS[c]
    raise ValueError(f"not a DTMF digit: {digit!r}")


def tone(digit: str, ms: float = 50.0, level_dbm0: float = -10.0) -> npt.NDArray[np.int16]:
    """One DTMF digit at ``level_dbm0`` per tone."""
    fr, fc = digit_frequencies(digit)
    t = np.arange(round(ms * RATE / 1000)) / RATE
    a = dbm0_to_amplitude(level_dbm0)
    x = a * (np.sin(2 * np.pi * fr * t) + np.sin(2 * np.pi * fc * t))
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def tones(digits: str, *, on_ms: float = 50.0, off_ms: float = 55.0, level_dbm0: float = -10.0) -> npt.NDArray[np.int16]:
    """In-band digits for peers without telephone-event; 'w' = 0.5 s pause, 'W' = 1 s."""
    parts: list[npt.NDArray[np.int16]] = []
    gap = np.zeros(round(off_ms * RATE / 1000), np.int16)
    for d in digits:
        if d == "w":
            parts.append(np.zeros(RATE // 2, np.int16))
        elif d == "W":
            parts.append(np.zeros(RATE, np.int16))
        else:
            parts.append(tone(d, on_ms, level_dbm0))
            parts.append(gap)
    return np.concatenate(parts) if parts else np.zeros(0, np.int16)
