"""Fast what-if runs of the detector's rules: frame features are computed once per clip and cached,
then ``Detector.step`` is replayed on them with the parameters asked for.

    python bench/amd/tune_amd.py [--split tune] [--set human_silence_ms=500 ...] [-v]

Only for trying parameters on the ``tune`` split: the held-out splits are for checking, with
bench_amd.py (which runs the real per-frame path and is the one to quote). Feature caches live in
bench/out/amd_features8_<split>.npz and must be deleted when features.py or voicing.py changes.
``--aug bursts knocks`` also scores the tune split with bursty noise added (bench/amd/augment.py):
the tune split's own noises are steady, and noise bursts were the detector's weakness.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np

from ringback.amd.corpus import Clip
from ringback.amd.detector import _SEARCH_MARGIN, Detector, spectral_floor
from ringback.amd.features import frame_features
from ringback.amd.params import FRAME_SAMPLES, AmdParams
from ringback.amd.voicing import periodicity

_DIRS = {"tune": ("bench/out/amd_corpus", "main"), "heldout": ("bench/out/amd_corpus", "main"),
         "fresh": ("bench/out/amd_corpus_fresh", "fresh"), "fresh2": ("bench/out/amd_corpus_fresh2", "fresh2"),
         "fresh3": ("bench/out/amd_corpus_fresh3", "fresh3"), "fresh4": ("bench/out/amd_corpus_fresh4", "fresh4")}
_COLS = ("level_db", "peak_hz", "purity", "purity2", "flatness", "band_db", "band_flatness")  # + voicing


def _stretched(c: Clip, factor: float) -> Clip:
    """The clip ``factor`` times longer, pitch kept: every speaker slower (> 1) or faster (< 1),
    with their pauses and the beep stretched alike. The tune split's voices speak at 130-229 wpm
    only; stretched copies of it let the rate-relative rules be tuned for slow and fast speakers
    without looking at a held-out split."""
    import dataclasses

    from ringback.amd.corpus import _stretch

    pcm = np.clip(np.round(_stretch(c.pcm.astype(np.float64), factor)), -32768, 32767).astype(np.int16)

    def sc(x: float | None) -> float | None:
        return None if x is None else x * factor

    return dataclasses.replace(c, pcm=pcm, beep_end_s=sc(c.beep_end_s), greeting_end_s=sc(c.greeting_end_s))


def features(split: str, stretch: float = 1.0, aug: str = "") -> tuple[list[Clip], list[np.ndarray]]:
    """The split's clips and, per clip, an (n_frames, 8) array of step() arguments (``aug``: a
    bursty noise kind of bench/amd/augment.py added to every clip, or "")."""
    from bench.amd.bench_amd import _corpus

    path, which = _DIRS[split]
    clips = [c for c in _corpus(Path(path), which) if c.split == split]
    if stretch != 1.0:
        clips = [_stretched(c, stretch) for c in clips]
    if aug:
        from bench.amd.augment import with_bursts

        clips = with_bursts(clips, aug)
    tag = (f"_x{stretch:g}" if stretch != 1.0 else "") + (f"_{aug}" if aug else "")
    cache = Path(f"bench/out/amd_features8_{split}{tag}.npz")
    if cache.exists():
        z = np.load(cache)
        return clips, [z[f"c{i}"] for i in range(len(clips))]
    p = AmdParams()
    out = []
    for c in clips:
        n = c.pcm.size // FRAME_SAMPLES
        cur = c.pcm[: n * FRAME_SAMPLES].reshape(n, FRAME_SAMPLES)
        prev = np.concatenate([np.zeros((1, FRAME_SAMPLES), np.int16), cur[:-1]])
        f = frame_features(prev, cur, p.beep_min_hz - _SEARCH_MARGIN, p.beep_max_hz + _SEARCH_MARGIN,
                           spectral_floor(p))
        out.append(np.stack([*(getattr(f, k) for k in _COLS), periodicity(prev, cur)], axis=1))
    np.savez_compressed(cache, **{f"c{i}": a for i, a in enumerate(out)})
    return clips, out


def replay(feats: np.ndarray, params: AmdParams) -> Detector:
    det = Detector(params)
    for row in feats.tolist():
        det.step(*row)
        det._events.clear()
        if det.done:
            break
    if det.verdict is None:
        det.finish()
    return det


def score(clips: list[Clip], feats: list[np.ndarray], params: AmdParams, verbose: bool = False) -> dict[str, float]:
    ok = pm = mp = 0
    people = machines = beeping = within = 0
    times: list[float] = []
    for c, f in zip(clips, feats, strict=True):
        d = replay(f, params)
        v = d.answered_by
        if c.truth in ("human", "silence"):
            people += 1
            good = v != "machine"
            pm += not good
            if c.truth == "human" and good and d.verdict is not None:
                times.append(d.verdict.decided_at)
        elif c.truth == "machine":
            machines += 1
            good = v == "machine"
            mp += not good
            if c.beep_end_s is not None:
                beeping += 1
                ge = d.greeting_end
                within += ge is not None and ge.kind == "beep" and abs(ge.at - c.beep_end_s) <= 0.3
        else:
            good = v != "human"
        ok += good
        if verbose and not good and d.verdict is not None:
            print(f"  WRONG {c.name:34s} {c.kind:22s} -> {v} {d.verdict.cause} @{d.verdict.decided_at:.2f} "
                  f"voiced={d.voiced_ms} syl={d._syl.count} segs={[(a, b) for a, b in d.segments][:8]}")
    return {"acc": ok / len(clips), "people->machine": pm / max(1, people), "machine->people": mp / max(1, machines),
            "median": float(np.median(times)), "p95": float(np.percentile(times, 95)),
            "beep300": within / max(1, beeping)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", default="tune", choices=list(_DIRS))
    ap.add_argument("--set", nargs="*", default=[], help="name=value AmdParams overrides")
    ap.add_argument("--stretch", type=float, nargs="*", default=[1.0],
                    help="also score time-stretched copies (e.g. 1.0 1.5 0.7: as spoken, slower, faster)")
    ap.add_argument("--aug", nargs="*", default=[""], help="bursty noise kinds to add (augment.py), '' = none")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    changes: dict[str, float | int] = {}
    for kv in a.set:
        k, v = kv.split("=")
        changes[k] = type(getattr(AmdParams(), k))(float(v))
    for f in a.stretch:
        for kind in a.aug:
            clips, feats = features(a.split, f, kind)
            r = score(clips, feats, AmdParams().replace(**changes), a.verbose)
            print(f"{a.split} x{f:g}{'+' + kind if kind else ''}", " ".join(f"{k}={v:.3f}" for k, v in r.items()))


if __name__ == "__main__":
    main()
