"""Garbage-collector settings for a long-running server process."""

from __future__ import annotations

import gc
import time

# Young-generation threshold once the process is up (CPython's default is 700). A collection
# holds the GIL for as long as it takes, and that length grows with the threshold: at 10,000 the
# engine's young collections took up to 14 ms and its middle ones 33 ms, long enough to make the
# media clock's thread hand a frame to the sender after it was due. At 2,000: 2-10 ms and 4-24 ms,
# for about 0.1% of a core more GC work (bench/engine/bench_clock_under_load.py prints both).
GC_GEN0_THRESHOLD = 2_000
_gc_settled = False


def settle_gc() -> None:
    """Once per process, when the server has started (API and engine processes alike): keep the cyclic GC off what startup built.

    Every call allocates a few thousand objects (SQL, SIP, HTTP, asyncio), so CPython's default
    thresholds ran a full collection every few hundred calls; each one walked the ~200k objects
    the server holds since startup (imports, SQLAlchemy and phonenumbers metadata) and stopped
    the event loop for ~100 ms, which was most of POST /Calls' p99 and ~0.5 ms of CPU per call.
    Garbage is collected first so nothing collectable (sockets in cycles) is frozen for good.
    """
    global _gc_settled
    if _gc_settled:
        return
    _gc_settled = True
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(max(GC_GEN0_THRESHOLD, gc.get_threshold()[0]), gen1, gen2)
    if _track not in gc.callbacks:
        gc.callbacks.append(_track)


# Collections hold the GIL for their whole length: the media clock's thread waits behind them.
# Counted per generation so a server can say how long its longest pauses were.
_started = 0.0
_pauses = [[0, 0.0, 0.0] for _ in range(3)]  # per generation: count, total s, longest s


def _track(phase: str, info: dict[str, int]) -> None:
    global _started
    if phase == "start":
        _started = time.perf_counter()
        return
    took = time.perf_counter() - _started
    p = _pauses[info.get("generation", 2)]
    p[0] += 1
    p[1] += took
    p[2] = max(p[2], took)


def gc_pauses() -> str:
    """One line: collections per generation, with their total and longest pause."""
    return ", ".join(f"gen{g} {int(c)} x, {t * 1000:.0f} ms total, longest {m * 1000:.1f} ms"
                     for g, (c, t, m) in enumerate(_pauses))
