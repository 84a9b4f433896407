"""Cost of the features alone (``frame_features`` + ``fill_band_flatness``, called as
``DetectorBank.feed`` calls them) on bank_cost.py's workload: 100 corpus calls x 250 ticks, every
call analysing. Best of several runs of process time per tick, as % of a core per 100 calls.

    python bench/amd/feature_cost.py                       # this checkout's features.py
    python bench/amd/feature_cost.py --ab OLD_features.py  # A/B, interleaved tick by tick

With --ab the other features.py (a copy of an older version, e.g. from ``git show``) is loaded
as a separate module and both are timed on each tick in alternating order, so both see the same
machine load. The rows that get the band flatness are those DetectorBank would fill (from
``FloorTracker`` and the default ``AmdParams``), fixed before timing.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
from workload import cost_workload  # bench/amd/workload.py (limits BLAS threads)

import ringback.amd.features as cur_features
from ringback.amd.detector import _SEARCH_MARGIN, FloorTracker, spectral_floor
from ringback.amd.params import AmdParams


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_features_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, default=Path("bench/out/amd_corpus"))
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--ab", type=Path, help="another features.py to time against this one")
    args = ap.parse_args()
    sel, frames = cost_workload(args.corpus, args.calls)
    ticks = len(frames)
    p = AmdParams()
    gate = (p.beep_min_hz - _SEARCH_MARGIN, p.beep_max_hz + _SEARCH_MARGIN, spectral_floor(p), p.beep_min_purity)
    # The rows DetectorBank fills on each tick (its noise floors), worked out once.
    floors = [FloorTracker() for _ in sel]
    need: list[np.ndarray] = []
    prev = np.zeros_like(frames[0])
    for fr in frames:
        f = cur_features.frame_features(prev, fr, *gate, lazy_band_flatness=True)
        rows = [i for i, (tr, lv, bd) in enumerate(zip(floors, f.level_db.tolist(), f.band_db.tolist(), strict=True))
                if lv >= p.vad_min_dbfs and p.vad_voiced_snr_db <= bd - tr.step(bd) < p.vad_snr_db]
        need.append(np.array(rows, dtype=np.intp))
        prev = fr
    sides: dict[str, ModuleType] = {"new": cur_features}
    if args.ab:
        sides = {"old": _load(args.ab), "new": cur_features}
    best = dict.fromkeys(sides, float("inf"))
    total = dict.fromkeys(sides, 0.0)
    for r in range(args.runs):
        spent = dict.fromkeys(sides, 0.0)
        order = list(sides) if r % 2 == 0 else list(reversed(sides))
        prev = np.zeros_like(frames[0])
        for fr, rows in zip(frames, need, strict=True):
            for s in order:
                ff, fill = sides[s].frame_features, sides[s].fill_band_flatness
                t0 = time.process_time()
                fill(ff(prev, fr, *gate, lazy_band_flatness=True), rows)
                spent[s] += time.process_time() - t0
            prev = fr
        for s in sides:
            best[s] = min(best[s], spent[s] / ticks)
            total[s] += spent[s]
    n_fill = sum(r.size for r in need)
    print(f"features, {args.calls} calls x {ticks} ticks ({n_fill} band-flatness rows filled):")
    for s in sides:
        print(f"  {s}: best {best[s] * 1e6:.0f} us/tick ({best[s] / 0.020:.2%} of a core per {args.calls} calls), "
              f"mean {total[s] / args.runs / ticks * 1e6:.0f} us/tick")
    if args.ab:
        print(f"  new/old: best {best['new'] / best['old']:.3f}, mean {total['new'] / total['old']:.3f}")


if __name__ == "__main__":
    main()
