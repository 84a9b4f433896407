"""Generated call-progress sounds, all int16 8 kHz mono.

Levels are given in dBm0 with the G.711 convention that a full-scale sine
(peak 32767) is +3.14 dBm0.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

RATE = 8000
FULL_SCALE_DBM0 = 3.14

Pcm = npt.NDArray[np.int16]


def dbm0_to_amplitude(level_dbm0: float) -> float:
    """Peak amplitude of a sine at ``level_dbm0``."""
    return 32767.0 * 10 ** ((level_dbm0 - FULL_SCALE_DBM0) / 20)


def amplitude_to_dbm0(peak: float) -> float:
    return FULL_SCALE_DBM0 + 20 * np.log10(max(peak, 1e-12) / 32767.0)


def _samples(ms: float) -> int:
    return max(0, round(ms * RATE / 1000))


def _to_pcm(x: npt.NDArray[np.float64]) -> Pcm:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def sines(freqs_levels: list[tuple[float, float]], ms: float, *, phase: float = 0.0) -> npt.NDArray[np.float64]:
    """Sum of sines [(Hz, dBm0)] as float samples (for building test signals)."""
    t = np.arange(_samples(ms)) / RATE
    out = np.zeros_like(t)
    for f, level in freqs_levels:
        out += dbm0_to_amplitude(level) * np.sin(2 * np.pi * f * t + phase)
    return out


def _ramped(x: npt.NDArray[np.float64], ramp_ms: float = 5.0) -> npt.NDArray[np.float64]:
    # short raised-cosine edges: no clicks, negligible effect on detectors
    n = min(_samples(ramp_ms), len(x) // 2)
    if n:
        r = 0.5 - 0.5 * np.cos(np.pi * np.arange(n) / n)
        x[:n] *= r
        x[-n:] *= r[::-1]
    return x


def silence(ms: float) -> Pcm:
    return np.zeros(_samples(ms), np.int16)


def beep(frequency: float = 1000.0, ms: float = 500.0, level_dbm0: float = -10.0) -> Pcm:
    return _to_pcm(_ramped(sines([(frequency, level_dbm0)], ms)))


def _cadence(freqs: list[float], level: float, on_ms: float, off_ms: float, total_ms: float) -> Pcm:
    period = np.concatenate([_to_pcm(_ramped(sines([(f, level) for f in freqs], on_ms))), silence(off_ms)])
    reps = max(1, int(np.ceil(total_ms / (on_ms + off_ms))))
    return np.tile(period, reps)[: _samples(total_ms)]


def ringback(ms: float = 6000.0, level_dbm0: float = -19.0) -> Pcm:
    """North American ringback: 440+480 Hz, 2 s on, 4 s off."""
    return _cadence([440.0, 480.0], level_dbm0, 2000, 4000, ms)


def busy(ms: float = 3000.0, level_dbm0: float = -24.0) -> Pcm:
    """North American busy: 480+620 Hz, 0.5 s on, 0.5 s off."""
    return _cadence([480.0, 620.0], level_dbm0, 500, 500, ms)


def hold_music(seconds: float = 16.0, level_dbm0: float = -20.0) -> Pcm:
    """A calm generated loop (original, royalty-free): soft arpeggiated chords.

    I-vi-IV-V in C major, each note a decaying sine with a quiet octave
    partial; its length is a whole number of bars so it loops without a seam.
    """
    bar_s = 2.0
    bars = max(1, round(seconds / bar_s))
    chords = [[261.63, 329.63, 392.00], [220.00, 261.63, 329.63], [174.61, 220.00, 261.63], [196.00, 246.94, 293.66]]
    note_s = bar_s / 4
    n_note = int(note_s * RATE)
    t = np.arange(n_note) / RATE
    env = np.exp(-3.0 * t) * (1 - np.exp(-t / 0.01))
    out: list[npt.NDArray[np.float64]] = []
    for b in range(bars):
        chord = chords[b % len(chords)]
        for i, f in enumerate([chord[0], chord[1], chord[2], chord[1]]):
            f = f * (2 if i == 2 else 1)
            out.append(env * (np.sin(2 * np.pi * f * t) + 0.25 * np.sin(4 * np.pi * f * t)))
    x = np.concatenate(out)
    x *= dbm0_to_amplitude(level_dbm0) / max(np.max(np.abs(x)), 1e-9)
    return _to_pcm(x)
