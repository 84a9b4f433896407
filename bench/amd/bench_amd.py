"""AMD benchmark: the production detector and Asterisk app_amd (defaults) on the built corpus.

    python bench/amd/bench_amd.py [--corpus bench/out/amd_corpus] [--split both|all|tune|heldout|fresh|fresh2|fresh3|fresh4|fresh5|fresh6]

Splits: ``tune`` (the detector was tuned on it), ``heldout`` (the first held-out split: it was
looked at once, before the last round of tuning), ``fresh`` (a second held-out split built after
tuning with new voices, rates, pitches, noises and beep frequencies; never tuned on, but its
figures were seen before the second round of tuning), ``fresh2`` (a third held-out split, defined
after the second round of tuning with voices, rates, pitches, noises and beep frequencies used in
no other split; never tuned on, seen after the third round), ``fresh3`` (a fourth held-out split,
defined before the third round's detector changes with voices, rates, noises and beep frequencies
used in no other split; built then, and run once after that round's tuning was finished),
``fresh4`` (a fifth held-out split, defined in the fourth round before its detector changes, with
voices, rates (60-79 and 340-450 wpm), noises and beep frequencies used in no other split; run
before that round's changes and after them, never tuned on), ``fresh5`` (a sixth held-out
split, defined in the fifth round before its detector changes, with voices, noises (cafe, static,
a siren) and beep frequencies used in no other split; run before that round's changes and after
them, never tuned on), ``fresh6`` (a seventh held-out split, defined in the sixth round before its
detector changes, with voices, bursty noises (a dog barking, hammering, handset rustle) and beep
frequencies used in no other split; run before that round's changes and after them, never tuned
on), ``all``.

Scoring: people (and silence: undecided counts as a person) are right unless judged machine;
machines are right only when judged machine; fax is right when not judged human.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

# Measure this checkout's detector, not whatever ``ringback`` the environment has installed
# (the editable install may point at another checkout).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np

from ringback.amd.app_amd import run_app_amd
from ringback.amd.corpus import Clip, load_or_build
from ringback.amd.detector import Detector, DetectorBank
from ringback.amd.params import FRAME_SAMPLES, AmdParams
from ringback.amd.params import frames as clip_frames


def _corpus(path: Path, which: str) -> list[Clip]:
    """Load one corpus directory, building it first in its own process when missing: espeak-ng's
    output depends on what the process synthesised before, so building several in this one would
    not give the clips ``python -m ringback.amd.corpus`` gives."""
    if not (path / "labels.json").exists():
        flag = [] if which == "main" else [f"--{which}"]
        root = Path(__file__).resolve().parents[2]
        subprocess.run([sys.executable, "-m", "ringback.amd.corpus", *flag, str(path.resolve())], check=True, cwd=root)
    return load_or_build(path, which=which)


def run_detector(pcm: np.ndarray, params: AmdParams) -> Detector:
    det = Detector(params)
    for fr in clip_frames(pcm):
        det.feed(fr)
        if det.done:
            break
    if det.verdict is None:
        det.finish()
    return det


def _correct(truth: str, verdict: str) -> bool:
    if truth in ("human", "silence"):
        return verdict != "machine"
    if truth == "machine":
        return verdict == "machine"
    return verdict != "human"


def _pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q)) if xs else float("nan")


def evaluate(clips: list[Clip], params: AmdParams, label: str, verbose: bool = False) -> None:
    rows = []
    for c in clips:
        det = run_detector(c.pcm, params)
        app = run_app_amd(c.pcm)
        rows.append((c, det, app))
    people = [r for r in rows if r[0].truth in ("human", "silence")]
    humans = [r for r in rows if r[0].truth == "human"]
    machines = [r for r in rows if r[0].truth == "machine"]
    beeping = [r for r in machines if r[0].beep_end_s is not None]
    print(f"\n== {label}: {len(rows)} clips ({len(humans)} people, {len(people) - len(humans)} silence, "
          f"{len(machines)} machines of which {len(beeping)} beep, {len(rows) - len(people) - len(machines)} fax)")
    print(f"{'metric':44s} {'ringback':>10s} {'app_amd':>10s}")

    def line(name: str, a: float, b: float, fmt: str = "{:10.1%}") -> None:
        print(f"{name:44s} {fmt.format(a)} {fmt.format(b)}")

    acc = [sum(_correct(c.truth, x) for c, x in ((r[0], v) for r, v in zip(rows, vs, strict=True))) / len(rows)
           for vs in ([r[1].answered_by for r in rows], [r[2].answered_by for r in rows])]
    line("accuracy", acc[0], acc[1])
    print(f"{'accuracy ratio ringback / app_amd':44s} {acc[0] / max(acc[1], 1e-9):10.3f}")
    line("people judged machines", sum(r[1].answered_by == "machine" for r in people) / max(1, len(people)),
         sum(r[2].answered_by == "machine" for r in people) / max(1, len(people)))
    line("machines judged people (incl. unknown)", sum(r[1].answered_by != "machine" for r in machines) / max(1, len(machines)),
         sum(r[2].answered_by != "machine" for r in machines) / max(1, len(machines)))
    line("unknown verdicts", sum(r[1].answered_by == "unknown" for r in rows) / len(rows),
         sum(r[2].answered_by == "unknown" for r in rows) / len(rows))
    ht = [r[1].verdict.decided_at for r in humans if r[1].verdict and r[1].answered_by != "machine"]
    at = [r[2].decided_at for r in humans if r[2].answered_by != "machine"]
    line("people: median verdict time (s)", _pct(ht, 50), _pct(at, 50), "{:10.2f}")
    line("people: p95 verdict time (s)", _pct(ht, 95), _pct(at, 95), "{:10.2f}")
    mt = [r[1].verdict.decided_at for r in machines if r[1].verdict and r[1].answered_by == "machine"]
    amt = [r[2].decided_at for r in machines if r[2].answered_by == "machine"]
    line("machines: median verdict time (s)", _pct(mt, 50), _pct(amt, 50), "{:10.2f}")
    # Beep end (ringback only: app_amd has no beep detector).
    errs, ready, early, found = [], [], 0, 0
    for c, det, _ in beeping:
        ge = det.greeting_end
        if ge is not None and ge.kind == "beep":
            found += 1
            errs.append(abs(ge.at - (c.beep_end_s or 0)))
        if ge is not None:
            if ge.decided_at < (c.beep_end_s or 0):
                early += 1
            else:
                ready.append(ge.decided_at - (c.beep_end_s or 0))
    within = sum(e <= 0.3 for e in errs) / max(1, len(beeping))
    print(f"{'beep found (of beeping machines)':44s} {found / max(1, len(beeping)):10.1%}")
    print(f"{'beep end within 300 ms (of beeping machines)':44s} {within:10.1%}")
    print(f"{'beep end error median / p95 (ms)':44s} {_pct(errs, 50) * 1000:7.0f} / {_pct(errs, 95) * 1000:.0f}")
    print(f"{'app audio may start before beep end (clips)':44s} {early:10d}")
    print(f"{'beep end -> verdict ready median / p95 (ms)':44s} {_pct(ready, 50) * 1000:7.0f} / {_pct(ready, 95) * 1000:.0f}")
    nob = [r for r in machines if r[0].beep_end_s is None]
    ge_kinds = [r[1].greeting_end.kind if r[1].greeting_end else "none" for r in nob]
    print(f"{'no-beep machines: greeting end by':44s} " + ", ".join(f"{k}={ge_kinds.count(k)}" for k in sorted(set(ge_kinds))))
    fb = [r for r in rows if r[0].beep_end_s is None and r[1].greeting_end and r[1].greeting_end.kind == "beep"]
    print(f"{'false beeps (clips without a beep)':44s} {len(fb):10d}")
    if verbose:
        for c, det, _ in beeping:
            ge = det.greeting_end
            if ge is None or ge.kind != "beep" or abs(ge.at - (c.beep_end_s or 0)) > 0.3:
                print(f"  BEEP? {c.name:40s} {c.kind:16s} hz={c.beep_hz} end={c.beep_end_s:.2f} -> {ge} "
                      f"verdict={det.answered_by}")
        for c, det, _app in rows:
            if not _correct(c.truth, det.answered_by):
                v = det.verdict
                print(f"  WRONG {c.name:40s} {c.kind:24s} -> {det.answered_by} {v.cause if v else ''} "
                      f"@{v.decided_at if v else 0:.2f} voiced={det.voiced_ms} words={det.words}")


def cpu_cost(clips: list[Clip], params: AmdParams, calls: int = 100) -> None:
    """End to end, as in the engine: `calls` calls' mu-law frames decoded by table (as
    MediaClock.tick does) and fed through the engine's batcher (one DetectorBank pass per tick)."""
    from ringback.media._blas import limit_blas_threads

    limit_blas_threads()  # as the engine's media clock does: idle OpenBLAS threads spin, counted as CPU
    from ringback.engine.amd_run import _AmdBatcher
    from ringback.media import g711

    class _Clock:  # stands in for MediaClock: the batcher only joins and leaves it
        def add_mixer(self, m: object) -> None: ...
        def remove_mixer(self, m: object) -> None: ...

    class _Session:
        def __init__(self, slot: int) -> None:
            self._slot = slot

    sel = [clips[i % len(clips)] for i in range(calls)]
    n = min(min(c.pcm.size for c in sel) // FRAME_SAMPLES, 250)
    codes = np.stack([g711.ulaw_encode(c.pcm[: n * FRAME_SAMPLES]) for c in sel])
    tx = np.zeros((calls, FRAME_SAMPLES), np.int32)
    present = np.ones(calls, bool)

    def run(ticks: int) -> tuple[float, int]:
        b = _AmdBatcher(_Clock())  # type: ignore[arg-type]
        dets = [Detector(params) for _ in range(calls)]
        for i, d in enumerate(dets):
            b.add(_Session(i), d)  # type: ignore[arg-type]
        t0 = time.process_time()
        for k in range(ticks):
            rx = g711.ULAW_DECODE[codes[:, k * FRAME_SAMPLES : (k + 1) * FRAME_SAMPLES]]
            b._mix(rx, tx, present)
            # Keep every detector analysing (the worst case): undo `done` so all stay in.
            for d in dets:
                d.done = False
        return time.process_time() - t0, ticks

    run(20)  # warm up caches and the CPU clock
    dt, ticks = run(n)
    per_tick = dt / ticks
    print(f"\n== CPU (process time): {calls} calls x {ticks} ticks, G.711 decode + engine batcher + DetectorBank")
    print(f"per 20 ms tick: {per_tick * 1e6:.0f} us -> {per_tick / 0.020:.2%} of one core per {calls} calls")
    bank = DetectorBank()
    dets = [Detector(params) for _ in range(calls)]
    pcm = g711.ULAW_DECODE[codes]
    t0 = time.process_time()
    for k in range(n):
        bank.feed(dets, pcm[:, k * FRAME_SAMPLES : (k + 1) * FRAME_SAMPLES])
        for d in dets:
            d.done = False
    bank_only = (time.process_time() - t0) / n
    print(f"DetectorBank alone: {bank_only * 1e6:.0f} us/tick -> {bank_only / 0.020:.2%} of one core per {calls} calls")
    det = Detector(params)
    fr = pcm[0, :FRAME_SAMPLES]
    t0 = time.process_time()
    for _ in range(2000):
        det.feed(fr)
        det.done = False
    single = (time.process_time() - t0) / 2000
    print(f"single Detector.feed: {single * 1e6:.1f} us/frame -> {single / 0.020 * 100:.2%} of a core per 100 calls")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, default=Path("bench/out/amd_corpus"))
    ap.add_argument("--fresh-corpus", type=Path, default=Path("bench/out/amd_corpus_fresh"))
    ap.add_argument("--fresh2-corpus", type=Path, default=Path("bench/out/amd_corpus_fresh2"))
    ap.add_argument("--fresh3-corpus", type=Path, default=Path("bench/out/amd_corpus_fresh3"))
    ap.add_argument("--fresh4-corpus", type=Path, default=Path("bench/out/amd_corpus_fresh4"))
    ap.add_argument("--fresh5-corpus", type=Path, default=Path("bench/out/amd_corpus_fresh5"))
    ap.add_argument("--fresh6-corpus", type=Path, default=Path("bench/out/amd_corpus_fresh6"))
    ap.add_argument("--split", default="both",
                    choices=["both", "tune", "heldout", "fresh", "fresh2", "fresh3", "fresh4", "fresh5", "fresh6", "all"])
    ap.add_argument("--verbose", "-v", action="store_true")
    ap.add_argument("--no-cpu", action="store_true")
    args = ap.parse_args()
    t0 = time.perf_counter()
    clips = _corpus(args.corpus, "main")
    if args.split in ("both", "fresh", "all"):
        # Its own directory and process-independent recipe (see ringback.amd.corpus).
        clips += _corpus(args.fresh_corpus, "fresh")
    if args.split in ("both", "fresh2", "all"):
        clips += _corpus(args.fresh2_corpus, "fresh2")
    if args.split in ("both", "fresh3", "all"):
        clips += _corpus(args.fresh3_corpus, "fresh3")
    if args.split in ("both", "fresh4", "all"):
        clips += _corpus(args.fresh4_corpus, "fresh4")
    if args.split in ("both", "fresh5", "all"):
        clips += _corpus(args.fresh5_corpus, "fresh5")
    if args.split in ("both", "fresh6", "all"):
        clips += _corpus(args.fresh6_corpus, "fresh6")
    print(f"corpus: {len(clips)} clips ({time.perf_counter() - t0:.1f} s to load/build)")
    params = AmdParams()
    splits = ["tune", "heldout", "fresh", "fresh2", "fresh3", "fresh4", "fresh5", "fresh6"] if args.split == "both" else [args.split]
    for s in splits:
        sel = clips if s == "all" else [c for c in clips if c.split == s]
        evaluate(sel, params, s, args.verbose)
    if args.split == "both":
        evaluate(clips, params, "all", False)
    if not args.no_cpu:
        cpu_cost(clips, params)
    _ = statistics  # keep import for quick ad-hoc use


if __name__ == "__main__":
    main()
