"""Checks that audio arrived by content: normalised cross-correlation against the reference."""

from __future__ import annotations

import numpy as np


def best_correlation(heard: np.ndarray, reference: np.ndarray) -> float:
    """Max normalised cross-correlation of `reference` within `heard` (1.0 = identical shape)."""
    return correlate(heard, reference)[0]


def correlate(heard: np.ndarray, reference: np.ndarray) -> tuple[float, int]:
    """(max normalised cross-correlation, offset in samples of `reference` within `heard`)."""
    h = heard.astype(np.float64)
    r = reference.astype(np.float64)
    if len(r) == 0 or len(h) < len(r):
        return 0.0, -1
    r = r - r.mean()
    rn = np.sqrt((r * r).sum())
    if rn == 0:
        return 0.0, -1
    n = len(h) + len(r)
    size = 1 << (n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(h, size) * np.conj(np.fft.rfft(r, size)), size)[: len(h) - len(r) + 1]
    # Energy of each window of `heard` for normalisation.
    c = np.concatenate([[0.0], np.cumsum(h * h)])
    energy = c[len(r):] - c[: len(h) - len(r) + 1]
    s = np.concatenate([[0.0], np.cumsum(h)])
    mean = (s[len(r):] - s[: len(h) - len(r) + 1]) / len(r)
    var = np.maximum(energy - len(r) * mean * mean, 1e-9)
    ncc = corr / (np.sqrt(var) * rn)
    i = int(np.argmax(ncc))
    return float(ncc[i]), i


def contains(heard: np.ndarray, reference: np.ndarray, chunks: int = 4) -> float:
    """How surely `heard` contains `reference`, robust to a concealed or lost frame: the reference
    is cut into `chunks` pieces, each found on its own, and the second-best-but-one score is kept
    (a slip of 20 ms shifts everything after it, which spoils one whole-window correlation)."""
    n = len(reference) // chunks
    scores = sorted(best_correlation(heard, reference[i * n:(i + 1) * n]) for i in range(chunks))
    return scores[len(scores) // 2]
