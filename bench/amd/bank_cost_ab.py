r"""A/B cost of DetectorBank on a fixed workload, old and new code interleaved tick by tick in one
process (so both see the same machine load): 100 corpus calls x up to 250 ticks, all analysing.

    python bench/amd/bank_cost_ab.py --old-pkg DIR

DIR holds ``ringback_orig``: a copy of the old ringback/amd with its imports renamed, e.g.
    mkdir -p DIR/ringback_orig && touch DIR/ringback_orig/__init__.py
    git show / cp the old ringback/amd to DIR/ringback_orig/amd
    sed -i 's/ringback\.amd/ringback_orig.amd/g' DIR/ringback_orig/amd/*.py
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from workload import cost_workload  # bench/amd/workload.py (limits BLAS threads)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--old-pkg", type=Path, required=True)
    ap.add_argument("--corpus", type=Path, default=Path("bench/out/amd_corpus"))
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    sys.path.insert(0, str(args.old_pkg))
    new = importlib.import_module("ringback.amd.detector")
    old = importlib.import_module("ringback_orig.amd.detector")
    old_params = importlib.import_module("ringback_orig.amd.params")
    sel, frames = cost_workload(args.corpus, args.calls)
    ticks = len(frames)
    sides = {"old": (old, old_params.AmdParams()), "new": (new, new.AmdParams())}
    best = {"old": float("inf"), "new": float("inf")}
    total = {"old": 0.0, "new": 0.0}
    for r in range(args.runs):
        state = {s: (m.DetectorBank(), [m.Detector(p) for _ in sel]) for s, (m, p) in sides.items()}
        spent = {"old": 0.0, "new": 0.0}
        order = ("old", "new") if r % 2 == 0 else ("new", "old")
        for fr in frames:
            for s in order:
                bank, dets = state[s]
                t0 = time.process_time()
                bank.feed(dets, fr)
                spent[s] += time.process_time() - t0
                for d in dets:  # keep every detector analysing (the worst case)
                    d.done = False
        for s in spent:
            best[s] = min(best[s], spent[s] / ticks)
            total[s] += spent[s]
    for s in ("old", "new"):
        print(f"{s}: best {best[s] * 1e6:.0f} us/tick ({best[s] / 0.020:.2%} of a core per {args.calls} calls), "
              f"mean {total[s] / args.runs / ticks * 1e6:.0f} us/tick")
    print(f"new/old: best {best['new'] / best['old']:.3f}, mean {total['new'] / total['old']:.3f}")


if __name__ == "__main__":
    main()
