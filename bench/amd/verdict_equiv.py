"""Verdict equivalence: every corpus clip through ``Detector.feed`` and through ``DetectorBank``,
recording every event and the final state, to prove an optimisation changes no decision.

    python bench/amd/verdict_equiv.py --save /tmp/amd_baseline.pkl     # before a change
    python bench/amd/verdict_equiv.py --check /tmp/amd_baseline.pkl    # after it: exact equality

The bank run feeds all clips together (as the engine's batcher does: only live detectors, each
tick), so calls mixed with others must give what each gives alone.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np

from ringback.amd.corpus import Clip, load
from ringback.amd.detector import Detector, DetectorBank
from ringback.amd.params import AmdParams
from ringback.amd.params import frames as clip_frames

_CORPORA = ["amd_corpus", "amd_corpus_fresh", "amd_corpus_fresh2", "amd_corpus_fresh3",
            "amd_corpus_fresh4", "amd_corpus_fresh5", "amd_corpus_fresh6"]

State = tuple[object, ...]


def _state(det: Detector, events: list[object]) -> State:
    # Everything a caller or a later rule can see; events hold exact float times.
    return (tuple(events), det.verdict, det.greeting_end, det.beep_end_s, det.done, det.t_ms,
            det.voiced_ms, det.words, det.utterances, det.sentence_pauses, det.first_speech_ms,
            det.last_speech_end_ms, det._syl.count, tuple(map(tuple, det.segments)))


def run_single(clips: list[Clip], params: AmdParams) -> list[State]:
    out = []
    for c in clips:
        det, evs = Detector(params), []
        for fr in clip_frames(c.pcm):
            ev = det.feed(fr)
            while ev is not None:
                evs.append(ev)
                ev = det.next_event()
            if det.done:
                break
        if det.verdict is None:
            evs.append(det.finish())
        out.append(_state(det, evs))
    return out


def run_bank(clips: list[Clip], params: AmdParams) -> list[State]:
    frames = [clip_frames(c.pcm) for c in clips]
    dets = [Detector(params) for _ in clips]
    evs: list[list[object]] = [[] for _ in clips]
    bank = DetectorBank()
    for k in range(max(f.shape[0] for f in frames)):
        live = [i for i, d in enumerate(dets) if not d.done and k < frames[i].shape[0]]
        if not live:
            break
        batch = np.stack([frames[i][k] for i in live])
        for j, ev in bank.feed([dets[i] for i in live], batch):
            evs[live[j]].append(ev)
    for d, e in zip(dets, evs, strict=True):
        if d.verdict is None:
            e.append(d.finish())
    return [_state(d, e) for d, e in zip(dets, evs, strict=True)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("bench/out"))
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--save", type=Path)
    g.add_argument("--check", type=Path)
    args = ap.parse_args()
    clips: list[Clip] = []
    for name in _CORPORA:
        if (args.out / name / "labels.json").exists() or name != "amd_corpus_fresh6":
            clips += load(args.out / name)  # (fresh6 may be missing from a baseline's checkout)
    params = AmdParams()
    single, bank = run_single(clips, params), run_bank(clips, params)
    n_ev = sum(len(s[0]) for s in single)
    bad_sb = [c.name for c, a, b in zip(clips, single, bank, strict=True) if a != b]
    print(f"{len(clips)} clips, {n_ev} events (single); single != bank on {len(bad_sb)} clips {bad_sb[:5]}")
    if args.save:
        with args.save.open("wb") as fh:
            pickle.dump({"names": [c.name for c in clips], "single": single, "bank": bank}, fh)
        print(f"saved -> {args.save}")
        return
    with args.check.open("rb") as fh:
        base = pickle.load(fh)
    assert base["names"] == [c.name for c in clips], "corpus changed"
    bad = [(c.name, kind) for kind in ("single", "bank")
           for c, a, b in zip(clips, base[kind], {"single": single, "bank": bank}[kind], strict=True) if a != b]
    n_base = sum(len(s[0]) for s in base["single"]) + sum(len(s[0]) for s in base["bank"])
    print(f"compared {len(clips)} clips x 2 paths, {n_base} baseline events: {len(bad)} differ {bad[:10]}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
