"""The fixed workload the AMD cost benchmarks time (bank_cost.py, bank_cost_ab.py, feature_cost.py):
``calls`` corpus clips (every 7th, wrapping) cut to the shortest one's length, at most 250 ticks,
as one (calls, 160) int16 array per tick. Importing it limits BLAS to one thread, as the engine's
media clock does: OpenBLAS's idle helper threads spin after each call and would be counted as the
detector's CPU.

Import it after the script has put the ringback checkout it times on ``sys.path``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ringback.amd.corpus import Clip, load
from ringback.amd.params import FRAME_SAMPLES
from ringback.media._blas import limit_blas_threads

limit_blas_threads()

MAX_TICKS = 250


def cost_workload(corpus: Path, calls: int) -> tuple[list[Clip], list[np.ndarray]]:
    """The clips chosen and, per tick, their frames (C-contiguous, as the media clock hands them)."""
    clips = load(corpus)
    sel = [clips[(i * 7) % len(clips)] for i in range(calls)]
    ticks = min(min(c.pcm.size for c in sel) // FRAME_SAMPLES, MAX_TICKS)
    pcm = np.stack([c.pcm[: ticks * FRAME_SAMPLES] for c in sel])
    return sel, [np.ascontiguousarray(pcm[:, k * FRAME_SAMPLES : (k + 1) * FRAME_SAMPLES]) for k in range(ticks)]
