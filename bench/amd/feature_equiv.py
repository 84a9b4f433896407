"""Feature equivalence: the outputs of ``frame_features`` (and ``fill_band_flatness``) on a fixed
workload, saved once and compared bit for bit later, to prove an optimisation of features.py
changes no value.

    python bench/amd/feature_equiv.py --save bench/out/amd_features_base.npz    # before a change
    python bench/amd/feature_equiv.py --check bench/out/amd_features_base.npz   # after it

Workload (all clips of ``--corpus``):
- "bank": the clips in groups of ``--calls``, one batch per tick of the group's live clips (a clip
  leaves when it ends, so batch sizes shrink), called as ``DetectorBank.feed`` calls it (lazy band
  flatness, then ``fill_band_flatness`` for the rows whose voice decision needs it);
- "single": every clip alone, one (1, 160) batch per frame, as ``Detector.feed`` calls it;
- "full": the bank batches again with the default options (every row gets every feature) and
  with ``lazy_band_flatness=False`` at the detector's floor and purity gate.
Which rows get ``fill_band_flatness`` depends on the detector's noise floor and parameters (owned
elsewhere and changing): the rows are computed once, at --save, from ``FloorTracker`` and
``AmdParams``, and stored with the call arguments, so --check replays exactly the same calls.
The workloads run interleaved (a bank tick, then single frames) and the outputs are kept, not
copied, until the end: a result overwritten by a later call (a reused buffer) shows as a
difference, as does state leaking from one batch size to another.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np

from ringback.amd.corpus import load
from ringback.amd.features import FrameFeatures, fill_band_flatness, frame_features
from ringback.amd.params import FRAME_SAMPLES
from ringback.amd.params import frames as clip_frames

FIELDS = ("level_db", "peak_hz", "purity", "purity2", "flatness", "band_db", "band_flatness")
_SINGLES_PER_TICK = 8
Batch = tuple[str, np.ndarray, np.ndarray, list[int]]  # (workload, prev, cur, clip index of each row)


def batches(clips: list[np.ndarray], calls: int) -> Iterator[Batch]:
    """Bank ticks of each group of ``calls`` clips, each followed by one single-call frame of the
    clips in turn (so both paths, and many batch sizes, alternate)."""
    frames = [clip_frames(c) for c in clips]
    zero = np.zeros((1, FRAME_SAMPLES), dtype=np.int16)
    singles = [(i, k) for i, f in enumerate(frames) for k in range(f.shape[0])]
    s = 0
    for g0 in range(0, len(frames), calls):
        group = list(range(g0, min(g0 + calls, len(frames))))
        last: np.ndarray | None = None
        last_live: list[int] = []
        for k in range(max(frames[i].shape[0] for i in group)):
            live = [i for i in group if k < frames[i].shape[0]]
            cur = np.stack([frames[i][k] for i in live])
            if last is not None and live == last_live:
                prev = last  # the bank's last batch, as DetectorBank reuses it
            else:
                prev = np.concatenate([frames[i][k - 1 : k] if k else zero for i in live], axis=0)
            last, last_live = cur, live
            yield "bank", prev, cur, live
            # Single frames in between, as Detector.feed makes them: (1, 160) views of the clip.
            for i, j in singles[s : s + _SINGLES_PER_TICK]:
                yield "single", frames[i][j - 1 : j] if j else zero, frames[i][j].reshape(1, FRAME_SAMPLES), [i]
            s += _SINGLES_PER_TICK
    for i, j in singles[s:]:
        yield "single", frames[i][j - 1 : j] if j else zero, frames[i][j].reshape(1, FRAME_SAMPLES), [i]


def _need_rows(f: FrameFeatures, rows: list[int], floors: dict[tuple[str, int], object], kind: str) -> np.ndarray:
    """The rows DetectorBank would fill (every detector kept analysing): the band floor of each
    call including this frame, then ``_needs_band_flatness``."""
    from ringback.amd.detector import FloorTracker
    from ringback.amd.params import AmdParams

    p = AmdParams()
    need = []
    for j, (i, lv, bd) in enumerate(zip(rows, f.level_db.tolist(), f.band_db.tolist(), strict=True)):
        tr = floors.get((kind, i))
        if tr is None:
            tr = floors[(kind, i)] = FloorTracker()
        bfl = tr.step(bd)  # type: ignore[attr-defined]
        if lv >= p.vad_min_dbfs and p.vad_voiced_snr_db <= bd - bfl < p.vad_snr_db:
            need.append(j)
    return np.array(need, dtype=np.intp)


def gate_args() -> tuple[float, float, float, float]:
    """lo_hz, hi_hz, spectral_min_dbfs, tone_min_purity as DetectorBank passes them (default params)."""
    from ringback.amd.detector import _SEARCH_MARGIN, spectral_floor
    from ringback.amd.params import AmdParams

    p = AmdParams()
    return p.beep_min_hz - _SEARCH_MARGIN, p.beep_max_hz + _SEARCH_MARGIN, spectral_floor(p), p.beep_min_purity


def run(clips: list[np.ndarray], calls: int, args4: tuple[float, float, float, float],
        need: dict[str, list[np.ndarray]] | None) -> tuple[dict[str, np.ndarray], dict[str, list[np.ndarray]], float]:
    """All outputs per workload (fields concatenated over the calls, in call order), the rows filled
    per call, and the process time spent in the feature functions."""
    lo, hi, smin, tmin = args4
    kept: dict[str, list[FrameFeatures]] = {"bank": [], "single": [], "full": [], "eager": []}
    filled: dict[str, list[np.ndarray]] = {"bank": [], "single": []}
    floors: dict[tuple[str, int], object] = {}
    pos = {"bank": 0, "single": 0}
    spent = 0.0
    for kind, prev, cur, rows in batches(clips, calls):
        t0 = time.process_time()
        f = frame_features(prev, cur, lo, hi, smin, tmin, lazy_band_flatness=True)
        spent += time.process_time() - t0
        if need is None:
            r = _need_rows(f, rows, floors, kind)
        else:
            r = need[kind][pos[kind]]
            pos[kind] += 1
        filled[kind].append(r)
        t0 = time.process_time()
        fill_band_flatness(f, r)
        spent += time.process_time() - t0
        kept[kind].append(f)
        if kind == "bank":
            kept["full"].append(frame_features(prev, cur, lo, hi))
            kept["eager"].append(frame_features(prev, cur, lo, hi, smin, tmin))
    out: dict[str, np.ndarray] = {}
    for kind, fs in kept.items():
        for name in FIELDS:
            out[f"{kind}.{name}"] = np.concatenate([getattr(f, name) for f in fs])
        if kind in ("bank", "single"):
            # The lazy path's kept spectra and rows (what fill_band_flatness reads).
            out[f"{kind}.spectral_rows"] = np.concatenate(
                [f.spectral_rows if f.spectral_rows is not None else np.zeros(0, np.intp) for f in fs])
    return out, filled, spent


def _pack_rows(rs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    lens = np.array([r.size for r in rs], dtype=np.int64)
    return np.concatenate(rs).astype(np.int64) if rs else np.zeros(0, np.int64), lens


def _unpack_rows(flat: np.ndarray, lens: np.ndarray) -> list[np.ndarray]:
    return [a.astype(np.intp) for a in np.split(flat, np.cumsum(lens)[:-1])]


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit for bit: NaN equals the same NaN, and -0.0 differs from 0.0."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return bool(np.array_equal(a.view(np.uint8), b.view(np.uint8)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, default=Path("bench/out/amd_corpus"))
    ap.add_argument("--calls", type=int, default=100)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--save", type=Path)
    g.add_argument("--check", type=Path)
    args = ap.parse_args()
    clips = [c.pcm for c in load(args.corpus)]
    sha = hashlib.sha256()
    for c in clips:
        sha.update(np.ascontiguousarray(c).tobytes())
    corpus_sha = sha.hexdigest()
    if args.save:
        args4 = gate_args()
        out, filled, spent = run(clips, args.calls, args4, None)
        extra: dict[str, np.ndarray] = {"args": np.array(args4), "calls": np.array(args.calls),
                                        "n_clips": np.array(len(clips)), "corpus_sha": np.array(corpus_sha)}
        for kind, rs in filled.items():
            extra[f"need.{kind}"], extra[f"need_len.{kind}"] = _pack_rows(rs)
        args.save.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(args.save, **out, **extra)
        n_fill = sum(r.size for rs in filled.values() for r in rs)
        print(f"{len(clips)} clips: {out['bank.level_db'].size} bank rows, {out['single.level_db'].size} single "
              f"calls, {n_fill} rows filled; features {spent:.2f} s -> {args.save}")
        return
    base = np.load(args.check)
    assert int(base["calls"]) == args.calls and str(base["corpus_sha"]) == corpus_sha, "workload changed"
    args4 = tuple(float(x) for x in base["args"])
    need = {k: _unpack_rows(base[f"need.{k}"], base[f"need_len.{k}"]) for k in ("bank", "single")}
    out, _, spent = run(clips, args.calls, args4, need)  # type: ignore[arg-type]
    bad = []
    for key, arr in out.items():
        ref = base[key]
        if not same_bits(arr, ref):
            if arr.shape == ref.shape and arr.dtype == ref.dtype:
                ne = np.flatnonzero((arr.view(np.uint8) != ref.view(np.uint8)).reshape(arr.size, -1).any(axis=1))
                worst = float(np.nanmax(np.abs(arr[ne] - ref[ne]))) if arr.dtype.kind == "f" else 0.0
                bad.append(f"{key}: {ne.size} values differ (max abs difference {worst:.3g})")
            else:
                bad.append(f"{key}: shape/dtype {arr.shape}/{arr.dtype} vs {ref.shape}/{ref.dtype}")
    n_vals = sum(a.size for a in out.values())
    print(f"compared {len(out)} arrays, {n_vals} values, bit for bit: {len(bad)} differ; features {spent:.2f} s")
    for b in bad:
        print("  " + b)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
