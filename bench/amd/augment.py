"""Bursty-noise copies of the ``tune`` split, for tuning the detector against noise that comes in
bursts (the held-out splits' cafe, static, office, hammering... are never used for tuning).

The tune split's own noises (white, pink, none) are steady, so nothing in it shows how bursts read
as speech. These generic kinds are added on top of each clip's own noise, at the corpus's noise
levels, with a seed of their own:

- ``bursts``: noise bursts of 30-400 ms (random spectral tilt and band, random attack and decay),
  0.2-2 s apart: static crackles, rustling, breath on the mouthpiece, traffic going by.
- ``knocks``: impacts, a click then 2-4 inharmonic resonances (200-3000 Hz) dying away in 10-100 ms,
  0.15-1.5 s apart: doors, cutlery, typing, footsteps.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ringback.amd.corpus import SR, Clip, _mulaw_roundtrip

AUG_SEED = 5_000_007
KINDS = ("bursts", "knocks")


def _bursts(n: int, rng: np.random.Generator) -> np.ndarray:
    x = np.zeros(n)
    pos = int(rng.uniform(0.0, 1.0) * SR)
    fr = np.fft.rfftfreq(4096, 1 / SR)
    while pos < n:
        m = min(int(rng.uniform(0.03, 0.4) * SR), n - pos)
        spec = np.fft.rfft(rng.standard_normal(4096))
        lo, hi = rng.uniform(50.0, 800.0), rng.uniform(1500.0, 4000.0)
        spec[(fr < lo) | (fr > hi)] = 0.0
        spec /= np.maximum(fr, 50.0) ** rng.uniform(0.0, 1.0)
        burst = np.fft.irfft(spec, 4096)[:m]
        burst /= np.sqrt(np.mean(burst**2)) + 1e-9
        tt = np.arange(m) / SR
        env = np.minimum(1.0, tt / rng.uniform(0.002, 0.05)) * np.exp(-tt / rng.uniform(0.02, 0.3))
        x[pos : pos + m] += rng.uniform(1.0, 6.0) * env * burst
        pos += m + int(rng.uniform(0.2, 2.0) * SR)
    return x


def _knocks(n: int, rng: np.random.Generator) -> np.ndarray:
    x = np.zeros(n)
    pos = int(rng.uniform(0.0, 1.0) * SR)
    while pos < n:
        m = min(int(0.2 * SR), n - pos)
        tt = np.arange(m) / SR
        hit = rng.standard_normal(m) * np.exp(-tt / 0.002)
        decay = np.exp(-tt / rng.uniform(0.01, 0.1))
        for _ in range(int(rng.integers(2, 5))):
            hit += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * rng.uniform(200.0, 3000.0) * tt) * decay
        x[pos : pos + m] += rng.uniform(1.0, 6.0) * hit
        pos += int(rng.uniform(0.15, 1.5) * SR)
    return x


def with_bursts(clips: list[Clip], kind: str, seed: int = AUG_SEED) -> list[Clip]:
    """Copies of ``clips`` with ``kind`` noise added at -65..-42 dBFS (RMS over the clip), through
    G.711 again. Deterministic for a given clip list, kind and seed."""
    rng = np.random.default_rng([seed, KINDS.index(kind)])
    out = []
    for c in clips:
        n = c.pcm.size
        z = _bursts(n, rng) if kind == "bursts" else _knocks(n, rng)
        z *= 32768.0 * 10 ** (rng.uniform(-65, -42) / 20.0) / np.sqrt(2) / (np.sqrt(np.mean(z**2)) + 1e-9)
        x = np.clip(c.pcm.astype(np.float64) + z, -32768, 32767)
        out.append(dataclasses.replace(c, name=f"{c.name}+{kind}", pcm=_mulaw_roundtrip(x)))
    return out


WHISPER_SEED = 5_000_011
WHISPER_VOICES = [("en-us", "whisper"), ("en-us", "whisperf")]  # espeak's whisper variants: no split uses them


def whisper_clips(n_human: int = 40, n_machine: int = 30, seed: int = WHISPER_SEED) -> list[Clip]:
    """People and machines of the tune split's recipe (phrases, noises, levels) in whispered voices,
    which have no pitch at all: the voicing test must not lose them. Build in a fresh process
    (espeak-ng's output depends on what it synthesised before)."""
    from ringback.amd.corpus import _Builder

    b = _Builder("tune", np.random.default_rng([seed, 0]))
    b.voices = WHISPER_VOICES
    clips = [b.human(i) for i in range(n_human)] + [b.machine(i) for i in range(n_machine)]
    return [dataclasses.replace(c, name=c.name.replace("tune/", "tune/whisper-")) for c in clips]
