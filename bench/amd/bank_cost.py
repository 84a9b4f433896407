"""DetectorBank cost on a fixed workload: 100 corpus calls x 250 ticks, every detector kept
analysing (the worst case), best of several runs of process time.

    python bench/amd/bank_cost.py [--root DIR]   # DIR: a checkout (or copy) whose ringback to time
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ap = argparse.ArgumentParser()
ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[2])
ap.add_argument("--corpus", type=Path, default=Path(__file__).resolve().parents[2] / "bench/out/amd_corpus")
ap.add_argument("--calls", type=int, default=100)
ap.add_argument("--runs", type=int, default=7)
args = ap.parse_args()
sys.path.insert(0, str(args.root))

import numpy as np  # noqa: E402

from ringback.amd.corpus import load  # noqa: E402
from ringback.amd.detector import Detector, DetectorBank  # noqa: E402
from ringback.amd.params import FRAME_SAMPLES, AmdParams  # noqa: E402
from ringback.media._blas import limit_blas_threads  # noqa: E402

# As in the engine (the media clock sets it): one BLAS thread. OpenBLAS's idle helper threads
# spin after each call and would be counted as the detector's CPU here.
limit_blas_threads()

clips = load(args.corpus)
sel = [clips[(i * 7) % len(clips)] for i in range(args.calls)]
ticks = min(min(c.pcm.size for c in sel) // FRAME_SAMPLES, 250)
pcm = np.stack([c.pcm[: ticks * FRAME_SAMPLES] for c in sel])
frames = [np.ascontiguousarray(pcm[:, k * FRAME_SAMPLES : (k + 1) * FRAME_SAMPLES]) for k in range(ticks)]
params = AmdParams()
best = float("inf")
for _ in range(args.runs):
    bank, dets = DetectorBank(), [Detector(params) for _ in sel]
    t0 = time.process_time()
    for fr in frames:
        bank.feed(dets, fr)
        for d in dets:
            d.done = False
    best = min(best, (time.process_time() - t0) / ticks)
print(f"{args.root}: {args.calls} calls x {ticks} ticks: {best * 1e6:.0f} us/tick -> "
      f"{best / 0.020:.2%} of a core per {args.calls} calls")
