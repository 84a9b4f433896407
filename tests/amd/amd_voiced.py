"""Voiced speech stand-ins for the detector's rule tests: since speech must be voiced (a periodic
pulse train, ``vad_min_periodicity``), plain noise no longer stands in for it."""

from __future__ import annotations

import numpy as np

SR = 8000


def voiced(rng: np.random.Generator, n: int, amp: float = 3000.0, f0: float = 140.0, glide: float = -50.0) -> np.ndarray:
    """``n`` samples of a vowel-like sound at RMS ``amp``: the harmonics (up to 3.4 kHz) of a pitch
    starting at ``f0`` Hz and gliding by ``glide`` Hz a second (as intonation does; no harmonic
    holds a frequency like a beep), shaped by two formant-like bumps, with a little breath noise.
    Many harmonics: never tonal to the tone tests."""
    if n <= 0:
        return np.zeros(0)
    f = np.maximum(f0 + glide * np.arange(n) / SR, 90.0)  # a long one levels off at a low voice
    phase = 2 * np.pi * np.cumsum(f) / SR
    formants = ((rng.uniform(500, 800), 150.0), (rng.uniform(1100, 1900), 250.0))
    x = np.zeros(n)
    for h in range(1, int(3400 / max(f.max(), 50.0)) + 1):
        fr = h * f
        env = 0.05 + sum(1.0 / (1.0 + ((fr - fc) / bw) ** 2) for fc, bw in formants)
        x += env * np.sin(h * phase + rng.uniform(0, 2 * np.pi))
    x += 0.05 * np.std(x) * rng.standard_normal(n)
    return x * (amp / (np.sqrt(np.mean(x**2)) + 1e-9))


def voiced_syllables(rng: np.random.Generator, n: int, syl_s: float, dip_s: float = 0.06,
                     amp: float = 3000.0) -> np.ndarray:
    """``tests.support.amd_signals.syllables`` with voiced syllables: ``n`` syllables of ``syl_s``
    seconds, each followed by a quiet ``dip_s`` (bridged by the speech hangover)."""
    parts: list[np.ndarray] = []
    for _ in range(n):
        parts += [voiced(rng, int(round(syl_s * SR)), amp), np.zeros(int(round(dip_s * SR)))]
    return np.concatenate(parts[:-1])
