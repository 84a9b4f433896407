"""Concurrent RTP sessions with live two-way G.711 on loopback (issue 6 item 4).

ringback's MediaEngine runs in this process, pinned to CPU 0 (taskset); the
far side runs pinned to CPU 1. Every received stream is decoded and run
through in-band DTMF detection by the engine's shared clock.

Two far sides, one run each per N:

* ``python``: a separate process with one UDP socket per stream that sends a
  speech-like signal with a DTMF digit every 2 s, and timestamps every packet
  it receives from ringback with the kernel's receive timestamp
  (SO_TIMESTAMPNS; on loopback taken when ringback's sendto delivers it). The
  share of packets more than 5 ms off their ideal 20 ms grid is measured
  here, per stream, against the stream's median offset. Streams that got
  fewer packets than expected are counted, never left out.
* ``sipp``: SIPp 3.6 (Debian sip-tester) as ``-rtp_echo`` on one media port:
  it echoes every packet back to its sender, so ringback receives, decodes and
  DTMF-checks one stream per call while SIPp does the same number of receives
  and sends in C. SIPp's own CPU for the same calls is the reference ratio.

CPU is process time (getrusage for ringback plus /proc/PID/stat of its media
sender process, /proc/PID/stat for the far sides) over the measured window, so other load on the machine does not
inflate it; off-grid shares do depend on it, so the 1-minute load average
seen at the start of each run is printed beside them. With --repeat the
median of each figure over the repeats is reported.

    python bench/media/bench_media.py                       # N = 100, 300, 1000; both far sides
    python bench/media/bench_media.py 300 --seconds 20 --peer python --repeat 3
    python bench/media/bench_media.py --search              # largest N meeting 0.1% > 5 ms
    RB_BENCH_SENDER=off python bench/media/bench_media.py   # RTP sent from the clock's thread
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import multiprocessing as mp
import os
import resource
import select
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

# run as a script, sys.path[0] is bench/media: put this checkout first so the
# engine measured is the one beside the benchmark, not whatever is installed
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

SO_TIMESTAMPNS = 35  # Linux; not exported by the socket module
PERIOD = 0.02
TARGET_PCT = 0.1  # issue 6: under 0.1% of packets more than 5 ms off grid
RINGBACK_CPU = 0
PEER_CPU = 1


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _proc_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime, all threads


def _realtime(pid: int = 0) -> None:
    # what Asterisk -p and FreeSWITCH -rp do: the media process preempts ordinary work
    os.sched_setscheduler(pid, os.SCHED_RR, os.sched_param(10))


def _far_signal() -> list[bytes]:
    # 2 s loop: speech-like noise, then a 100 ms DTMF '5', as u-law frames
    from ringback.media import dtmf, g711

    rng = np.random.default_rng(1)
    n = 16000
    env = np.abs(np.sin(np.arange(n) / 8000 * 2 * np.pi * 3))
    x = np.convolve(rng.normal(0, 1, n), np.hanning(9), "same") * env
    x = x / np.abs(x).max() * 6000
    x[8000:8800] = dtmf.tone("5", 100, -12)
    x[7600:8000] = 0
    x[8800:9200] = 0
    codes = g711.ulaw_encode(x.astype(np.int16))
    return [codes[i : i + 160].tobytes() for i in range(0, n, 160)]


def far_side(conn: Any, ring_ports: list[int], seconds: float, cpu: int | None, rt: bool) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    if rt:
        _realtime()
    socks = []
    for _ in ring_ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 18)
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        socks.append(s)
    conn.send([s.getsockname()[1] for s in socks])
    window = conn.recv()  # (skip, measure): seconds after go to start and to stop counting
    frames = _far_signal()
    ep = select.epoll()
    index = {}
    for i, s in enumerate(socks):
        ep.register(s.fileno(), select.EPOLLIN)
        index[s.fileno()] = i
    hdr = struct.Struct("!BBHII")
    rng = np.random.default_rng()
    seqs = rng.integers(0, 65536, len(socks)).tolist()
    tss = rng.integers(0, 2**32, len(socks)).tolist()
    ssrcs = rng.integers(0, 2**32, len(socks)).tolist()
    arrivals: list[list[tuple[int, float]]] = [[] for _ in socks]
    anc = socket.CMSG_SPACE(16)
    t0 = time.monotonic()
    wall0 = time.time()
    k = 0
    cpu0 = time.process_time()
    while True:
        deadline = t0 + k * PERIOD
        if deadline > t0 + seconds:
            break
        for i, s in enumerate(socks):
            # each stream at its own point of the 2 s signal: callers do not press keys in unison
            frame = frames[(k + i * 7) % len(frames)]
            with contextlib.suppress(BlockingIOError):
                s.sendto(hdr.pack(0x80, 0, seqs[i], tss[i], ssrcs[i]) + frame, ("127.0.0.1", ring_ports[i]))
            seqs[i] = (seqs[i] + 1) & 0xFFFF
            tss[i] = (tss[i] + 160) & 0xFFFFFFFF
        k += 1
        nxt = t0 + k * PERIOD
        while True:
            rem = nxt - time.monotonic()
            if rem <= 0:
                break
            for fd, _ in ep.poll(rem):
                i = index[fd]
                s = socks[i]
                while True:
                    try:
                        data, ancdata, _, _ = s.recvmsg(256, anc)
                    except BlockingIOError:
                        break
                    if len(data) < 12:
                        continue
                    ts = None
                    for level, typ, cdata in ancdata:
                        if level == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS:
                            sec, nsec = struct.unpack("qq", cdata[:16])
                            ts = sec + nsec * 1e-9
                    seq = struct.unpack_from("!H", data, 2)[0]
                    arrivals[i].append((seq, ts if ts is not None else time.time()))
    far_cpu = time.process_time() - cpu0
    # per stream: distance of each arrival (inside the measured window) from its ideal 20 ms grid
    lo, hi = wall0 + window[0], wall0 + window[1]
    expected_per_stream = (window[1] - window[0]) / PERIOD
    total = off = short = 0
    when = np.zeros(20, np.int64)  # off-grid packets per 1/20 of the window: a stall shows as a spike
    late_side = 0
    for arr in arrivals:
        if len(arr) < 2:
            short += 1
            continue
        seq = np.array([a[0] for a in arr], np.int64)
        ext = np.concatenate([[0], np.cumsum(((np.diff(seq) + 32768) % 65536) - 32768)])
        t = np.array([a[1] for a in arr])
        keep = (t >= lo) & (t < hi)
        if keep.sum() < 0.9 * expected_per_stream:
            short += 1
        if not keep.any():
            continue
        resid = t[keep] - ext[keep] * PERIOD
        signed = resid - np.median(resid)
        dev = np.abs(signed)
        total += dev.size
        bad = dev > 0.005
        off += int(np.sum(bad))
        late_side += int(np.sum(signed > 0.005))
        if bad.any():
            bins = ((t[keep][bad] - lo) / (hi - lo) * len(when)).astype(int).clip(0, len(when) - 1)
            np.add.at(when, bins, 1)
    conn.send({"packets": total, "expected": int(expected_per_stream * len(socks)), "off_grid": off,
               "short_streams": short, "far_cpu": far_cpu, "when": when.tolist(), "late": late_side, "seconds": time.monotonic() - t0})


def _free_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def _start_sipp_echo(media_port: int, rt: bool) -> subprocess.Popen[bytes]:
    sipp = shutil.which("sipp")
    if sipp is None:
        raise RuntimeError("sipp not installed (Debian sip-tester)")
    cmd = ["taskset", "-c", str(PEER_CPU)]
    if rt:
        cmd += ["chrt", "-r", "10"]
    cmd += [sipp, "-sn", "uas", "-i", "127.0.0.1", "-p", str(_free_udp_port()), "-mi", "127.0.0.1",
            "-mp", str(media_port), "-rtp_echo", "-nostdin", "-trace_err", "-error_file", os.devnull]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # wait until the echo port answers
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    probe.settimeout(0.2)
    try:
        for _ in range(50):
            probe.sendto(b"\x80\x00" + bytes(170), ("127.0.0.1", media_port))
            with contextlib.suppress(TimeoutError):
                probe.recvfrom(2048)
                return proc
            if proc.poll() is not None:
                break
    finally:
        probe.close()
    proc.kill()
    raise RuntimeError("sipp -rtp_echo did not come up")


async def run(n: int, seconds: float, pin: bool, peer: str, rt: bool) -> dict[str, Any]:
    from ringback.media.engine import MediaEngine
    from ringback.media.tones import hold_music

    if os.environ.get("RB_BENCH_SENDER") == "off":  # as `ringback serve --media-sender off`
        from ringback.media.clock import set_media_sender

        set_media_sender(False)
    if pin:
        os.sched_setaffinity(0, {RINGBACK_CPU})
    if rt:
        _realtime()
    load = os.getloadavg()[0]
    loop = asyncio.get_running_loop()
    rss0 = _rss_kib()
    base = 20000 + (os.getpid() % 200) * 100  # a range of our own, clear of other runs' RTP ports
    engine = MediaEngine("127.0.0.1", (base, base + 4 * n + 200), rtp_timeout=3600)
    await engine.start()
    sessions = [await engine.open_session() for _ in range(n)]
    warm = 1.5
    proc = sipp = None
    if peer == "python":
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=far_side,
                           args=(child, [s.local_port for s in sessions], seconds + 1.0, PEER_CPU if pin else None, rt))
        proc.start()
        far_ports = await loop.run_in_executor(None, parent.recv)
        for s, p in zip(sessions, far_ports, strict=True):
            s.set_remote("127.0.0.1", p, 0, None)
        parent.send((warm, seconds))
    else:
        echo_port = _free_udp_port()
        sipp = _start_sipp_echo(echo_port, rt)
        for s in sessions:
            s.set_remote("127.0.0.1", echo_port, 0, None)
    outgoing = hold_music(4)
    # calls do not all start their prompts in the same 20 ms: each loop starts at its own offset
    # (in step they would restart together every 4 s, a burst of task wake-ups no real load has)
    tasks = [loop.create_task(_loop_play(s, outgoing, i * len(outgoing) / 8000 / n)) for i, s in enumerate(sessions)]
    if os.environ.get("RB_BENCH_GC") == "off":
        gc.disable()
    elif os.environ.get("RB_BENCH_GC") == "freeze":
        # what a server does once started: long-lived objects out of the collector's sight
        # (done before the warm-up, as the collection it runs is itself a pause)
        gc.collect()
        gc.freeze()
    await asyncio.sleep(warm)
    gc_pause = [0.0, 0.0]

    def _gc_cb(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_pause[0] = time.perf_counter()
        else:
            gc_pause[1] = max(gc_pause[1], time.perf_counter() - gc_pause[0])

    gc.callbacks.append(_gc_cb)
    clock = engine.clock
    parts = _instrument(clock) if os.environ.get("RB_BENCH_PARTS") else None
    slips0, ticks0, skipped0 = clock.slips, clock.ticks, clock.skipped
    clock.max_tick_cost = 0.0
    rx0 = sum(s.stats["rx"]["received"] for s in sessions)  # type: ignore[index]
    digits0 = sum(s.stats["digits"]["inband"] for s in sessions)  # type: ignore[index]
    sipp_cpu0 = _proc_cpu_seconds(sipp.pid) if sipp else 0.0
    # ringback's media sender is a process of its own (pinned with us: it inherits the affinity)
    sender_pid = clock.sender.pid if clock.sender is not None else None
    sender_cpu0 = _proc_cpu_seconds(sender_pid) if sender_pid else 0.0
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    w0 = time.monotonic()
    await asyncio.sleep(seconds - warm)
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.monotonic() - w0
    sipp_cpu = (_proc_cpu_seconds(sipp.pid) - sipp_cpu0) if sipp else 0.0
    sender_cpu = (_proc_cpu_seconds(sender_pid) - sender_cpu0) if sender_pid else 0.0
    rss2 = _rss_kib()
    rx = sum(s.stats["rx"]["received"] for s in sessions) - rx0  # type: ignore[index]
    digits = sum(s.stats["digits"]["inband"] for s in sessions) - digits0  # type: ignore[index]
    cpu = (ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime + sender_cpu) / wall
    out: dict[str, Any] = {
        "peer": peer,
        "calls": n,
        "load1": load,
        "cpu_pct": 100 * cpu,
        "sender_cpu_pct": 100 * sender_cpu / wall,
        "cpu_pct_per_call": 100 * cpu / n,
        "mem_kib_per_call": (rss2 - rss0) / n,
        "rx_pct": 100 * rx / (n * wall / PERIOD),  # packets ringback received of those due
        "digits_per_call_s": digits / n / wall,
        "clock_slips": clock.slips - slips0,
        "clock_skipped": clock.skipped - skipped0,
        "ticks": clock.ticks - ticks0,
        "max_tick_ms": clock.max_tick_cost * 1000,
        "max_gc_ms": gc_pause[1] * 1000,
        "majflt": ru1.ru_majflt - ru0.ru_majflt,
        "nivcsw": ru1.ru_nivcsw - ru0.ru_nivcsw,
    }
    gc.callbacks.remove(_gc_cb)
    if parts is not None:
        ticks = max(1, out["ticks"])
        out["parts_us_per_call_tick"] = {k: round(v / ticks / n * 1e6, 2) for k, v in parts.items()}
    if proc is not None:
        far = await loop.run_in_executor(None, parent.recv)
        proc.join(5)
        out.update(far_packets=far["packets"], far_expected=far["expected"], short_streams=far["short_streams"],
                   off_grid_pct=100 * far["off_grid"] / max(1, far["packets"]),
                   peer_cpu_pct=100 * far["far_cpu"] / far["seconds"], off_when=far["when"], off_late=far["late"])
    if sipp is not None:
        out["peer_cpu_pct"] = 100 * sipp_cpu / wall
        sipp.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            sipp.wait(3)
        if sipp.poll() is None:
            sipp.kill()
    for t in tasks:
        t.cancel()
    for s in sessions:
        await s.close()
    await engine.close()
    return out


def _instrument(clock: Any) -> dict[str, float]:
    """Process time spent in the clock's parts (RB_BENCH_PARTS=1; adds a little overhead)."""
    parts = {"tick": 0.0, "drain": 0.0, "send": 0.0, "dtmf": 0.0}

    def wrap(obj: Any, name: str, key: str) -> None:
        orig = getattr(obj, name)

        def timed(*a: Any) -> Any:
            t = time.process_time()
            try:
                return orig(*a)
            finally:
                parts[key] += time.process_time() - t

        setattr(obj, name, timed)

    wrap(clock, "tick", "tick")
    wrap(clock, "_drain", "drain")
    wrap(clock, "_send_group", "send")
    wrap(clock._dtmf, "process", "dtmf")
    return parts


async def _loop_play(session: Any, pcm: np.ndarray, offset: float) -> None:
    await asyncio.sleep(offset)
    while not session.closed:
        await session.play(pcm)


def _one(n: int, seconds: float, pin: bool, peer: str, rt: bool) -> dict[str, Any]:
    # each run in a fresh process (not a pool worker: those may not start the far side),
    # so RSS per call and the clock start clean
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_run_child, args=(child, n, seconds, pin, peer, rt))
    proc.start()
    result = parent.recv()
    proc.join(10)
    if isinstance(result, BaseException):
        raise result
    return result  # type: ignore[no-any-return]


def _run_child(conn: Any, n: int, seconds: float, pin: bool, peer: str, rt: bool) -> None:
    try:
        try:
            import uvloop
        except ImportError:
            conn.send(asyncio.run(run(n, seconds, pin, peer, rt)))
        else:
            conn.send(uvloop.run(run(n, seconds, pin, peer, rt)))
    except Exception as exc:
        conn.send(RuntimeError(f"{type(exc).__name__}: {exc}"))


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out = dict(runs[0])
    for k, v in runs[0].items():
        if isinstance(v, int | float) and not isinstance(v, bool):
            m = statistics.median(r[k] for r in runs)
            out[k] = round(m) if isinstance(v, int) else m
    out["repeats"] = len(runs)
    if "off_grid_pct" in out:
        out["off_grid_runs"] = [round(r["off_grid_pct"], 3) for r in runs]
    return out


def _line(r: dict[str, Any]) -> str:
    s = (f"{r['peer']:6s} calls={r['calls']:5d} load1={r['load1']:4.1f} cpu={r['cpu_pct']:5.1f}% "
         f"(sender {r.get('sender_cpu_pct', 0.0):4.1f}%) "
         f"cpu/call={r['cpu_pct_per_call']:.3f}% mem/call={r['mem_kib_per_call']:5.1f}KiB "
         f"peer-cpu={r['peer_cpu_pct']:5.1f}% ratio={r['cpu_pct'] / max(r['peer_cpu_pct'], 1e-9):4.1f}x "
         f"rx={r['rx_pct']:5.1f}% digits/call/s={r['digits_per_call_s']:.2f} "
         f"slips={r['clock_slips']}/{r['ticks']} skipped={r['clock_skipped']} max-tick={r['max_tick_ms']:.1f}ms max-gc={r['max_gc_ms']:.1f}ms")
    if "parts_us_per_call_tick" in r:
        s += f" parts(us/call/tick)={r['parts_us_per_call_tick']}"
    if "off_grid_pct" in r:
        s += (f" off-grid(>5ms)={r['off_grid_pct']:.3f}% of {r['far_packets']}/{r['far_expected']} "
              f"short-streams={r['short_streams']}")
        if r.get("repeats", 1) > 1:
            s += f" runs={r['off_grid_runs']}"
        if os.environ.get("RB_BENCH_WHEN"):
            s += f" late={r['off_late']} when={r['off_when']} majflt={r['majflt']} nivcsw={r['nivcsw']}"
    return s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("calls", nargs="*", type=int, default=[100, 300, 1000])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--peer", choices=["python", "sipp", "both"], default="both")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--no-pin", action="store_true")
    ap.add_argument("--rt", action="store_true", help="SCHED_RR for ringback and the far side (as Asterisk -p)")
    ap.add_argument("--search", action="store_true", help="largest N meeting the off-grid target (python peer)")
    args = ap.parse_args()
    pin = not args.no_pin and len(os.sched_getaffinity(0)) >= 2
    peers = ["python", "sipp"] if args.peer == "both" else [args.peer]
    if args.search:
        best = None
        ladder = args.calls if args.calls != [100, 300, 1000] else [100, 200, 300, 400, 500, 600, 800, 1000]
        for n in sorted(set(ladder)):
            r = _median([_one(n, args.seconds, pin, "python", args.rt) for _ in range(args.repeat)])
            print(_line(r), flush=True)
            if r["off_grid_pct"] < TARGET_PCT and r["short_streams"] == 0:
                best = n
        print(f"largest N meeting <{TARGET_PCT}% of packets >5 ms off grid: {best}")
        return
    for n in args.calls:
        for peer in peers:
            r = _median([_one(n, args.seconds, pin, peer, args.rt) for _ in range(args.repeat)])
            print(_line(r), flush=True)


if __name__ == "__main__":
    main()
