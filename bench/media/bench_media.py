"""Concurrent RTP sessions with live two-way G.711 on loopback.

ringback's MediaEngine runs here (pinned to CPU 0); the far side runs in a
separate process (pinned to CPU 1) with its own timing, one UDP socket per
stream, sending a speech-like signal with a DTMF digit every 2 s and
timestamping what it receives from ringback with kernel receive timestamps.

Prints, per N: ringback CPU % (total and per call), memory per call, the share
of packets more than 5 ms off their ideal 20 ms grid as seen at the far-side
receiver, packets received, in-band digits detected, and clock slips.

    python bench/media/bench_media.py            # N = 100, 300, 1000
    python bench/media/bench_media.py 300 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import resource
import select
import socket
import struct
import sys
import time
from pathlib import Path

import numpy as np

# run as a script, sys.path[0] is bench/media: put this checkout first so the
# engine measured is the one beside the benchmark, not whatever is installed
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

SO_TIMESTAMPNS = 35  # Linux; not exported by the socket module
PERIOD = 0.02


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


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


def far_side(conn, ring_ports: list[int], seconds: float, cpu: int | None) -> None:  # noqa: ANN001
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    socks = []
    for _ in ring_ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 18)
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        socks.append(s)
    conn.send([s.getsockname()[1] for s in socks])
    conn.recv()  # go
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
    k = 0
    cpu0 = time.process_time()
    while True:
        deadline = t0 + k * PERIOD
        if deadline > t0 + seconds:
            break
        frame = frames[k % len(frames)]
        for i, s in enumerate(socks):
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
    # analyse: per stream, distance of each arrival from its ideal 20 ms grid
    total = off = 0
    for arr in arrivals:
        if len(arr) < 100:
            continue
        seq = np.array([a[0] for a in arr], np.int64)
        ext = np.concatenate([[0], np.cumsum(((np.diff(seq) + 32768) % 65536) - 32768)])
        t = np.array([a[1] for a in arr])
        keep = t >= t[0] + 1.0  # skip the first second (start-up)
        resid = t[keep] - ext[keep] * PERIOD
        dev = np.abs(resid - np.median(resid))
        total += dev.size
        off += int(np.sum(dev > 0.005))
    conn.send({"packets": total, "off_grid": off, "far_cpu": far_cpu, "seconds": time.monotonic() - t0})


async def run(n: int, seconds: float, pin: bool) -> dict[str, float]:
    from ringback.media.engine import MediaEngine

    if pin:
        os.sched_setaffinity(0, {0})
    rss0 = _rss_kib()
    engine = MediaEngine("127.0.0.1", (30000, 30000 + 4 * n + 200), rtp_timeout=3600)
    await engine.start()
    sessions = [await engine.open_session() for _ in range(n)]
    rss1 = _rss_kib()
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=far_side, args=(child, [s.local_port for s in sessions], seconds + 2, 1 if pin else None))
    proc.start()
    far_ports = await asyncio.get_running_loop().run_in_executor(None, parent.recv)
    for s, p in zip(sessions, far_ports, strict=True):
        s.set_remote("127.0.0.1", p, 0, None)
    outgoing = _far_signal_pcm()
    for s in sessions:
        asyncio.get_running_loop().create_task(_loop_play(s, outgoing))
    parent.send("go")
    await asyncio.sleep(1.5)  # warm-up
    clock = engine.clock
    slips0, ticks0 = clock.slips, clock.ticks
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    w0 = time.monotonic()
    await asyncio.sleep(seconds - 1.5)
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.monotonic() - w0
    rss2 = _rss_kib()
    far = await asyncio.get_running_loop().run_in_executor(None, parent.recv)
    proc.join(5)
    cpu = (ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime) / wall
    rx = sum(s.stats["rx"]["received"] for s in sessions)  # type: ignore[index]
    digits = sum(s.stats["digits"]["inband"] for s in sessions)  # type: ignore[index]
    out = {
        "calls": n,
        "cpu_pct": 100 * cpu,
        "cpu_pct_per_call": 100 * cpu / n,
        "mem_kib_per_call": (rss2 - rss0) / n,
        "mem_kib_per_call_open": (rss1 - rss0) / n,
        "far_packets": far["packets"],
        "off_grid_pct": 100 * far["off_grid"] / max(1, far["packets"]),
        "far_cpu_pct": 100 * far["far_cpu"] / far["seconds"],
        "rx_packets": rx,
        "inband_digits_per_call": digits / n,
        "clock_slips": clock.slips - slips0,
        "ticks": clock.ticks - ticks0,
        "max_tick_cost_ms": clock.max_tick_cost * 1000,
    }
    for s in sessions:
        await s.close()
    await engine.close()
    return out


def _far_signal_pcm() -> np.ndarray:
    from ringback.media import tones

    return tones.hold_music(4)


async def _loop_play(session, pcm: np.ndarray) -> None:  # noqa: ANN001
    while not session.closed:
        await session.play(pcm)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("calls", nargs="*", type=int, default=[100, 300, 1000])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--no-pin", action="store_true")
    args = ap.parse_args()
    pin = not args.no_pin and len(os.sched_getaffinity(0)) >= 2
    for n in args.calls:
        try:
            import uvloop

            r = uvloop.run(run(n, args.seconds, pin))
        except ImportError:
            r = asyncio.run(run(n, args.seconds, pin))
        print(
            f"calls={r['calls']:5d}  cpu={r['cpu_pct']:6.1f}%  cpu/call={r['cpu_pct_per_call']:.3f}%  "
            f"mem/call={r['mem_kib_per_call']:.1f} KiB  off-grid(>5ms)={r['off_grid_pct']:.3f}% "
            f"of {r['far_packets']} pkts  far-cpu={r['far_cpu_pct']:.1f}%  rx={r['rx_packets']}  "
            f"digits/call={r['inband_digits_per_call']:.1f}  slips={r['clock_slips']}/{r['ticks']}  "
            f"max-tick={r['max_tick_cost_ms']:.1f} ms",
            flush=True,
        )


if __name__ == "__main__":
    main()
