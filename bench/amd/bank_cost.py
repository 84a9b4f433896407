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

from workload import cost_workload  # noqa: E402  (bench/amd/workload.py; limits BLAS threads)

from ringback.amd.detector import Detector, DetectorBank  # noqa: E402
from ringback.amd.params import AmdParams  # noqa: E402

sel, frames = cost_workload(args.corpus, args.calls)
ticks = len(frames)
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
