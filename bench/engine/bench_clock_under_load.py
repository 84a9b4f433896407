"""Does the media clock slip when the API is busy? (DESIGN.md: the benchmarks run the API load and
the media load together.)

`ringback serve` runs in its own process with a trunk pointing at this bench's SIP responder. N
calls are answered and held (`<Pause>`), their RTP sent to a sink here, which timestamps every
packet per stream and reports the share more than 5 ms off each stream's ideal 20 ms grid.
Measured twice: media alone, then with POST /Calls at a fixed rate from a second process
(calls to a number the responder answers 486 busy, so each costs the engine its full dial path).

The sink takes the kernel's receive timestamp (SO_TIMESTAMPNS; on loopback, taken in ringback's
sendto) in a thread of its own, and places each packet on its stream's grid by RTP sequence
number, as bench/media/bench_media.py does: this process is busy too (the SIP responder answers
the load's INVITEs), and a timestamp taken when its event loop got round to the packet counted
its own delays as ringback's. (Before 2026-11 the sink used that user-space time and the arrival
order; figures from then are not comparable.)

    python bench/engine/bench_clock_under_load.py [--calls 100] [--rate 100] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import statistics
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_setup import CALLER, CallTimes, HoldingApp, Responder, cpu_percent, ringback_serve  # noqa: E402

BUSY = "+14155550190"


class BusyAwareResponder(Responder):
    """Answers like bench_setup's responder, but 486 for the busy number (the API load)."""

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        first = data.split(b"\r\n", 1)[0]
        if first.startswith(b"INVITE ") and BUSY.encode() in first:
            head = data.partition(b"\r\n\r\n")[0].decode("utf-8", "replace").split("\r\n")[1:]
            hdrs = [(k.strip(), v.strip()) for k, _, v in (h.partition(":") for h in head)]
            self._send(self._response(hdrs, "486 Busy Here", "busy"), addr)
            return
        if first.startswith(b"ACK ") and b"busy" in data:
            return
        super().datagram_received(data, addr)


SO_TIMESTAMPNS = 35  # Linux; not exported by the socket module
SO_RCVBUFFORCE = 33  # as root: past net.core.rmem_max, so a stalled sink thread loses nothing


class Sink:
    """Kernel arrival time and RTP sequence number of every packet, per source (one source = one
    call's stream), read by a thread of its own."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.arrivals: dict[tuple[str, int], list[tuple[int, float]]] = {}
        self.recording = False
        self._running = True
        self._thread = threading.Thread(target=self._run, name="rtp-sink", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        anc = socket.CMSG_SPACE(16)
        while self._running:
            try:
                data, ancdata, _, addr = self.sock.recvmsg(2048, anc)
            except TimeoutError:
                continue
            except OSError:
                return
            if not self.recording or len(data) < 12:
                continue
            ts = time.time()
            for level, typ, cdata in ancdata:
                if level == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", cdata[:16])
                    ts = sec + nsec * 1e-9
            seq = struct.unpack_from("!H", data, 2)[0]
            self.arrivals.setdefault(addr, []).append((seq, ts))

    def close(self) -> None:
        self._running = False
        self._thread.join(2)
        self.sock.close()


def off_grid(arrivals: dict[tuple[str, int], list[tuple[int, float]]]) -> tuple[float, int]:
    """Share of packets more than 5 ms off their stream's ideal 20 ms grid; packet count.

    A packet's place on the grid is its sequence number; the grid's phase is the stream's median
    offset, so one late first packet does not skew it.
    """
    off = total = 0
    for arr in arrivals.values():
        if len(arr) < 10:
            continue
        seq = np.array([a[0] for a in arr], np.int64)
        ext = np.concatenate([[0], np.cumsum(((np.diff(seq) + 32768) % 65536) - 32768)])
        resid = np.array([a[1] for a in arr]) - ext * 0.020
        err = np.abs(resid - np.median(resid))
        off += int(np.count_nonzero(err > 0.005))
        total += len(arr)
    return (off / total if total else float("nan")), total


def api_load(base: str, sid: str, token: str, rate: float, seconds: float, out: multiprocessing.Queue) -> None:
    """The API load, from its own process: POST /Calls at a fixed rate; puts latencies (ms) of the
    created calls and the number of requests that failed (an overloaded server times some out)."""

    async def run() -> tuple[list[float], int]:
        lat: list[float] = []
        failed = 0
        async with httpx.AsyncClient(base_url=base, auth=(sid, token), timeout=30,
                                     limits=httpx.Limits(max_connections=64)) as client:
            async def one() -> None:
                nonlocal failed
                t0 = time.perf_counter()
                try:
                    r = await client.post(f"/2008-08-01/Accounts/{sid}/Calls", data={
                        "Caller": CALLER, "Called": BUSY, "Url": "http://127.0.0.1:9/none", "Timeout": "5"})
                except httpx.HTTPError:
                    failed += 1
                    return
                if r.status_code == 201:
                    lat.append((time.perf_counter() - t0) * 1000)
                else:
                    failed += 1

            tasks = []
            start = time.perf_counter()
            for i in range(int(rate * seconds)):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one()))
            await asyncio.gather(*tasks)
        return lat, failed

    out.put(asyncio.run(run()))


async def main_async(calls: int, rate: float, seconds: float, workdir: Path) -> None:
    loop = asyncio.get_running_loop()
    sink = Sink()
    sink_port = sink.port
    times: dict[str, CallTimes] = {}
    resp_t, resp = await loop.create_datagram_endpoint(lambda: BusyAwareResponder(times, sink_port),
                                                       local_addr=("127.0.0.1", 0))
    app = HoldingApp(f'<Response><Pause length="{3 * seconds + 30:g}"/></Response>')
    try:
        with ringback_serve(f"sip:127.0.0.1:{resp.port}", workdir) as rb:
            async with httpx.AsyncClient(base_url=rb.http, auth=(rb.sid, rb.token), timeout=30) as client:
                for _ in range(calls):
                    r = await client.post(f"/2008-08-01/Accounts/{rb.sid}/Calls", data={
                        "Caller": CALLER, "Called": "4155550199",
                        "Url": app.url})
                    assert r.status_code == 201, r.text
            deadline = time.monotonic() + 30
            while app.requests < calls and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)
            with open("/proc/loadavg") as f:
                print(f"{app.requests} calls held with RTP to the sink; load average {f.read().split()[:3]}")

            for label, with_load in (("media alone", False), (f"media + POST /Calls at {rate:g}/s", True)):
                sink.arrivals.clear()
                sink.recording = True
                proc = None
                q: multiprocessing.Queue = multiprocessing.Queue()
                if with_load:
                    proc = multiprocessing.Process(target=api_load, args=(rb.http, rb.sid, rb.token, rate, seconds, q))
                    proc.start()
                cpu, _ = await asyncio.to_thread(cpu_percent, rb.pid, seconds)
                sink.recording = False
                share, n = off_grid(sink.arrivals)
                extra = ""
                if proc is not None:
                    lat, failed = await asyncio.to_thread(q.get, True, seconds + 120)
                    proc.join()
                    lat.sort()
                    if lat:
                        extra = (f"  POST p50 {statistics.median(lat):.1f} ms p99 {lat[int(0.99 * (len(lat) - 1))]:.1f} ms"
                                 f" ({len(lat)} calls, {failed} failed)")
                print(f"{label:<32} packets {n:7d}  >5 ms off grid {100 * share:.3f}%  ringback CPU {cpu:5.1f}%{extra}")
        # the media sender's own account, written when the engine stopped it: groups the engine
        # handed over late (its tick ran late) and groups the sender itself sent late
        for line in (workdir / "ringback.log").read_text(errors="replace").splitlines():
            if "media sender" in line or "garbage collection" in line:
                print(line.strip())
    finally:
        app.close()
        sink.close()
        resp_t.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        asyncio.run(main_async(args.calls, args.rate, args.seconds, Path(d)))


if __name__ == "__main__":
    main()
