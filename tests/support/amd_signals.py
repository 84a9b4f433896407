"""Feeding a whole signal through the production AMD detector, frame by frame, as the engine does."""

from __future__ import annotations

import numpy as np

from ringback.amd import AmdParams, Detector


def detect(x: np.ndarray, params: AmdParams | None = None) -> tuple[Detector, list[object]]:
    """Feed int16 audio at 8 kHz in 20 ms frames until the detector is done; every event it raised."""
    det = Detector(params)
    events: list[object] = []
    for i in range(x.size // 160):
        ev = det.feed(x[i * 160 : (i + 1) * 160])
        while ev is not None:
            events.append(ev)
            ev = det.next_event()
        if det.done:
            break
    return det, events


SR = 8000


def sil(s: float) -> np.ndarray:
    return np.zeros(int(round(s * SR)), np.float64)


def syllables(rng: np.random.Generator, n: int, syl_s: float, dip_s: float = 0.06, amp: float = 3000.0) -> np.ndarray:
    """``n`` syllables of ``syl_s`` seconds (noise), each followed by a ``dip_s`` quiet dip (bridged
    by the speech hangover, so it is one utterance); ``syl_s`` sets the speaking rate."""
    parts = []
    for _ in range(n):
        parts += [rng.standard_normal(int(round(syl_s * SR))) * amp, sil(dip_s)]
    return np.concatenate(parts[:-1])


def run(*parts: np.ndarray, params: AmdParams | None = None, tail: float = 8.0) -> tuple[Detector, list[object]]:
    """The parts one after another, then ``tail`` seconds of silence, through detect()."""
    x = np.clip(np.concatenate([*parts, sil(tail)]), -32768, 32767).astype(np.int16)
    return detect(x, params)
