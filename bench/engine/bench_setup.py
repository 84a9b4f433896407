"""Call set-up latency inside ringback with ~100 calls in flight, and a first measure of concurrent
calls with two-way media (issue 3, "How it must perform"; issue 6 item 4 sizes from here).

ringback runs as `ringback serve` in its own process (SQLite, WAL, synchronous=NORMAL: see
ringback/store/db.py), its trunk pointing at a far end of this benchmark's own:

* setup: a small asyncio SIP UAS in this process timestamps each INVITE as it arrives and answers
  180 + 200 at once; this process's own HTTP app server timestamps each first request. The load (REST
  POSTs) comes from this process over real sockets. Measured, per call:
    POST /Calls sent           -> INVITE received on the wire     (API, queue, dialer, SIP)
    200 OK sent                -> the app's first request received (ACK, state, webhook client)
  Target: p50 <= 20 ms each.
* media: SIPp (sip-tester) answers N calls and echoes every RTP packet back (-rtp_echo), so each call
  carries G.711 both ways (ringback sends 50 packets/s, decodes and runs DTMF detection on the echo).
  ringback's CPU% and RSS (from /proc) are sampled once all N calls are up; per call = (loaded - idle)/N.

    python bench/engine/bench_setup.py                 # both
    python bench/engine/bench_setup.py setup --calls 300 --inflight 100
    python bench/engine/bench_setup.py media --n 50,100,200
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.server
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "tests" / "interop" / "scenarios"
CALLER = "4155550100"



class _Server(http.server.ThreadingHTTPServer):
    # The default listen backlog (5) refuses connections when many calls ask the app at once.
    request_queue_size = 512
    daemon_threads = True


class HoldingApp:
    """The app of the media runs, in threads: answers every request with `twiml` (a <Pause> that
    holds the call) and counts the requests (the first request of a call = that call is up)."""

    def __init__(self, twiml: str) -> None:
        body = twiml.encode()
        self.requests = 0
        app = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _reply(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                app.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _reply  # noqa: N815

            def log_message(self, *a: object) -> None:
                pass

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/app"

    def close(self) -> None:
        self._httpd.shutdown()

def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    k = min(len(v) - 1, max(0, round(p / 100 * (len(v) - 1))))
    return v[k]


def summary(name: str, ms: list[float]) -> str:
    return (f"{name:<34} n={len(ms):4d}  p50={pct(ms, 50):7.2f} ms  p95={pct(ms, 95):7.2f} ms  "
            f"p99={pct(ms, 99):7.2f} ms  max={max(ms) if ms else float('nan'):7.2f} ms")


# ----------------------------------------------------------------------------------- ringback serve


@dataclass
class Ringback:
    proc: subprocess.Popen[bytes]
    http: str
    sid: str
    token: str
    workdir: Path

    @property
    def pid(self) -> int:
        return self.proc.pid


@contextlib.contextmanager
def ringback_serve(trunk: str, workdir: Path, *, rtp_ports: str = "") -> Iterator[Ringback]:
    workdir.mkdir(parents=True, exist_ok=True)
    sid = "AC" + secrets.token_hex(16)
    token = secrets.token_hex(16)
    http_port, sip_port = free_port(socket.SOCK_STREAM), free_port()
    db = f"sqlite:///{workdir}/ringback.db"
    if not rtp_ports:
        base = 40000 + secrets.randbelow(20) * 1000
        rtp_ports = f"{base}-{base + 998}"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),  # this checkout's ringback
        "RINGBACK_HTTP": f"127.0.0.1:{http_port}", "RINGBACK_SIP": f"127.0.0.1:{sip_port}",
        "RINGBACK_TRUNK": trunk, "RINGBACK_CPS": "10000", "RINGBACK_DATABASE_URL": db,
        "RINGBACK_RTP_PORTS": rtp_ports, "RINGBACK_DATA_DIR": str(workdir),
        "RINGBACK_ACCOUNT_SID": sid, "RINGBACK_AUTH_TOKEN": token, "RINGBACK_SHUTDOWN_GRACE": "2",
    }
    exe = [sys.executable, "-m", "ringback.cli"]
    profile = os.environ.get("BENCH_PROFILE")  # write a cProfile of `ringback serve` to this path
    serve = [sys.executable, "-m", "cProfile", "-o", profile, "-m", "ringback.cli"] if profile else exe
    log = open(workdir / "ringback.log", "wb")  # noqa: SIM115
    extra = ["--single-process"] if os.environ.get("BENCH_SINGLE_PROCESS") else []
    proc = subprocess.Popen([*serve, "serve", *extra], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    rb = Ringback(proc, f"http://127.0.0.1:{http_port}", sid, token, workdir)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"ringback serve exited: {(workdir / 'ringback.log').read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                r = httpx.get(f"{rb.http}/2008-08-01/Accounts/{sid}", auth=(sid, token), timeout=1)
                if r.status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError("ringback serve did not come up")
            time.sleep(0.1)
        subprocess.run([*exe, "number", "add", CALLER, "--account", sid, "--db", db], env=env, check=True,
                       stdout=subprocess.DEVNULL, cwd=workdir)
        yield rb
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _one_sample(pid: int) -> tuple[float, int]:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    return cpu, rss


def _children(pid: int) -> list[int]:
    """Every descendant: the engine process and its media sender count as ringback."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = [int(x) for x in f.read().split()]
    except OSError:
        return []
    return [k for kid in kids for k in (kid, *_children(kid))]


def proc_sample(pid: int) -> tuple[float, int]:
    """(utime+stime in seconds, RSS in bytes) of `pid` and its descendants (engine, media sender)."""
    cpu = rss = 0.0
    for p in [pid, *_children(pid)]:
        with contextlib.suppress(OSError):
            c, r = _one_sample(p)
            cpu += c
            rss += r
    return cpu, int(rss)


def cpu_percent(pid: int, seconds: float) -> tuple[float, int]:
    c0, _ = proc_sample(pid)
    t0 = time.monotonic()
    time.sleep(seconds)
    c1, rss = proc_sample(pid)
    return 100.0 * (c1 - c0) / (time.monotonic() - t0), rss


# --------------------------------------------------------------------------- the far end (setup run)


@dataclass
class CallTimes:
    invite: float | None = None
    ok_sent: float | None = None
    app: float | None = None
    bye: float | None = None


class Responder(asyncio.DatagramProtocol):
    """A minimal SIP UAS: 180 + 200 (SDP to a sink) for each new INVITE, 200 for BYE; timestamps by
    the X-Ringback-CallSid header ringback puts on each INVITE."""

    def __init__(self, times: dict[str, CallTimes], sink_port: int, ring_ms: float = 0.0) -> None:
        self.times = times
        self.sink_port = sink_port
        self.ring_ms = ring_ms
        self.answers: dict[str, bytes] = {}  # Call-ID -> our 200, for retransmitted INVITEs
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.port = transport.get_extra_info("sockname")[1]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        now = time.perf_counter()
        head, _, _ = data.partition(b"\r\n\r\n")
        lines = head.decode("utf-8", "replace").split("\r\n")
        method = lines[0].split(" ", 1)[0]
        hdrs: list[tuple[str, str]] = []
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs.append((k.strip(), v.strip()))

        def get(name: str) -> str:
            return next((v for k, v in hdrs if k.lower() == name.lower()), "")

        call_id = get("Call-ID") or get("i")
        if method == "INVITE":
            if call_id in self.answers:
                self._send(self.answers[call_id], addr)
                return
            sid = get("X-Ringback-CallSid") or call_id
            self.times.setdefault(sid, CallTimes()).invite = now
            tag = secrets.token_hex(4)
            ringing = self._response(hdrs, "180 Ringing", tag)
            sdp = (f"v=0\r\no=bench 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                   f"m=audio {self.sink_port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
                   f"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\n").encode()
            ok = self._response(hdrs, "200 OK", tag, sdp)
            self.answers[call_id] = ok
            self._send(ringing, addr)
            if self.ring_ms > 0:
                asyncio.get_running_loop().call_later(self.ring_ms / 1000, self._answer, sid, ok, addr)
            else:
                self._answer(sid, ok, addr)
        elif method == "BYE":
            self._send(self._response(hdrs, "200 OK", None), addr)
            self.answers.pop(call_id, None)
            sid = next((s for s, t in self.times.items() if t.bye is None and t.app is not None), None)
            if sid:
                self.times[sid].bye = now

    def _answer(self, sid: str, ok: bytes, addr: tuple[str, int]) -> None:
        self._send(ok, addr)
        self.times[sid].ok_sent = time.perf_counter()

    def _response(self, hdrs: list[tuple[str, str]], status: str, tag: str | None, body: bytes = b"") -> bytes:
        out = [f"SIP/2.0 {status}"]
        for k, v in hdrs:
            kl = k.lower()
            if kl in ("via", "v", "from", "f", "call-id", "i", "cseq", "record-route"):
                out.append(f"{k}: {v}")
            elif kl in ("to", "t"):
                out.append(f"{k}: {v};tag={tag}" if tag and ";tag=" not in v else f"{k}: {v}")
        out.append(f"Contact: <sip:bench@127.0.0.1:{self.port}>")
        if body:
            out.append("Content-Type: application/sdp")
        out.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(out) + "\r\n\r\n").encode() + body

    def _send(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(data, addr)


class Sink(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.packets = 0

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.packets += 1


@contextlib.asynccontextmanager
async def app_server(times: dict[str, CallTimes], hold_s: float) -> AsyncIterator[int]:
    """A bare HTTP/1.1 app (keep-alive) that timestamps each first request and holds the call."""
    body = f'<Response><Pause length="{hold_s:g}"/></Response>'.encode()
    reply = (b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: " + str(len(body)).encode()
             + b"\r\n\r\n" + body)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                now = time.perf_counter()
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                data = await reader.readexactly(length) if length else b""
                query = head.split(b" ", 2)[1].partition(b"?")[2]
                params = urllib.parse.parse_qs((data or query).decode())
                sid = params.get("CallSid", [""])[0]
                t = times.setdefault(sid, CallTimes())
                if t.app is None:
                    t.app = now
                writer.write(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def run_setup(calls: int, inflight: int, hold_s: float, workdir: Path) -> dict[str, list[float]]:
    loop = asyncio.get_running_loop()
    times: dict[str, CallTimes] = {}
    posted: dict[str, float] = {}
    sink_t, sink = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
    sink_port = sink_t.get_extra_info("sockname")[1]
    resp_t, resp = await loop.create_datagram_endpoint(lambda: Responder(times, sink_port),
                                                       local_addr=("127.0.0.1", 0))
    rate = inflight / hold_s  # calls per second that keeps `inflight` calls up
    try:
        async with app_server(times, hold_s) as app_port:
            with ringback_serve(f"sip:127.0.0.1:{resp.port}", workdir) as rb:
                print(f"ringback serve pid {rb.pid}; {calls} calls at {rate:.1f}/s, each held {hold_s:g} s "
                      f"(~{inflight} in flight); SQLite WAL, synchronous=NORMAL")
                url = f"http://127.0.0.1:{app_port}/app"
                limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
                async with httpx.AsyncClient(base_url=rb.http, auth=(rb.sid, rb.token), limits=limits,
                                             timeout=30) as client:
                    path = f"/2008-08-01/Accounts/{rb.sid}/Calls.json"
                    sem = asyncio.Semaphore(64)
                    up_at_post: list[int] = []

                    async def one() -> None:
                        async with sem:
                            up_at_post.append(sum(1 for t in times.values() if t.app and not t.bye))
                            t0 = time.perf_counter()
                            r = await client.post(path, data={"Caller": CALLER, "Called": "4155550199", "Url": url})
                            if r.status_code != 201:
                                print("POST failed", r.status_code, r.text[:200])
                                return
                            posted[r.json()["TwilioResponse"]["Call"]["Sid"]] = t0

                    tasks = []
                    start = time.perf_counter()
                    for i in range(calls):
                        delay = start + i / rate - time.perf_counter()
                        if delay > 0:
                            await asyncio.sleep(delay)
                        tasks.append(asyncio.create_task(one()))
                    await asyncio.gather(*tasks)
                    deadline = time.monotonic() + hold_s + 15
                    while time.monotonic() < deadline and sum(1 for s in posted if times.get(s, CallTimes()).app) < len(posted):
                        await asyncio.sleep(0.2)
                # Calls posted once the ramp was over saw ~inflight calls up.
                steady = {s for i, s in enumerate(posted) if i >= inflight}
                post_invite = [1000 * (times[s].invite - t0) for s, t0 in posted.items()  # type: ignore[operator]
                               if s in steady and s in times and times[s].invite]
                ok_app = [1000 * (times[s].app - times[s].ok_sent) for s in steady  # type: ignore[operator]
                          if s in times and times[s].app and times[s].ok_sent]
                answered = sum(1 for s in posted if times.get(s, CallTimes()).app)
                print(f"posted {len(posted)}, answered+requested {answered}; calls up when steady-state POSTs "
                      f"were made: median {statistics.median(up_at_post[inflight:] or [0]):.0f}")
                return {"post_to_invite": post_invite, "ok_to_app": ok_app}
    finally:
        resp_t.close()
        sink_t.close()


# ------------------------------------------------------------------------------------- media run


def run_media(n: int, hold_s: float, workdir: Path) -> dict[str, float]:
    sipp = shutil.which("sipp")
    if sipp is None:
        raise SystemExit("sipp (sip-tester) is needed for the media run")
    sip_port, media_port = free_port(), free_port()
    sdir = workdir / "sipp"
    sdir.mkdir(parents=True, exist_ok=True)
    sp = subprocess.Popen(
        [sipp, "-sf", str(SCENARIOS / "uas_answer_wait_bye.xml"), "-i", "127.0.0.1", "-p", str(sip_port),
         "-mi", "127.0.0.1", "-mp", str(media_port), "-rtp_echo", "-key", "te", "101", "-m", str(n),
         "-nostdin", "-trace_err", "-error_file", str(sdir / "errors.log")],
        cwd=sdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    time.sleep(0.3)
    sipp_pid = sp.pid
    try:
        with ringback_serve(f"sip:127.0.0.1:{sip_port}", workdir) as rb:
            idle_cpu, idle_rss = cpu_percent(rb.pid, 2.0)
            app = HoldingApp(f'<Response><Pause length="{hold_s:g}"/></Response>')
            with httpx.Client(base_url=rb.http, auth=(rb.sid, rb.token), timeout=30) as client:
                path = f"/2008-08-01/Accounts/{rb.sid}/Calls.json"
                for _ in range(n):
                    r = client.post(path, data={"Caller": CALLER, "Called": "4155550199", "Url": app.url})
                    assert r.status_code == 201, r.text
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and app.requests < n:
                    time.sleep(0.2)
                total = app.requests
                time.sleep(1.0)
                cpu, rss = cpu_percent(rb.pid, 3.0)
                scpu, _ = cpu_percent(sipp_pid, 1.0)
                app.close()
            return {"n": n, "cpu": cpu, "rss": rss, "idle_cpu": idle_cpu, "idle_rss": idle_rss, "sipp_cpu": scpu,
                    "up": total}
    finally:
        sp.terminate()
        try:
            sp.wait(5)
        except subprocess.TimeoutExpired:
            sp.kill()
            sp.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", nargs="?", choices=["setup", "media", "all"], default="all")
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--inflight", type=int, default=100)
    ap.add_argument("--hold", type=float, default=5.0)
    ap.add_argument("--n", default="50,100,200")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        if args.what in ("setup", "all"):
            res = asyncio.run(run_setup(args.calls, args.inflight, args.hold, Path(tmp) / "setup"))
            print(summary("POST /Calls -> INVITE on the wire", res["post_to_invite"]))
            print(summary("200 OK sent -> app request received", res["ok_to_app"]))
            ok = all(pct(v, 50) <= 20 for v in res.values())
            print(f"target p50 <= 20 ms each: {'met' if ok else 'NOT met'}")
        if args.what in ("media", "all"):
            print("concurrent calls, RTP both ways (SIPp -rtp_echo), ringback serve alone on its process:")
            for n in [int(x) for x in args.n.split(",")]:
                d = Path(tmp) / f"media{n}"
                d.mkdir(parents=True)
                m = run_media(n, 40.0, d)
                per_cpu = (m["cpu"] - m["idle_cpu"]) / n
                per_rss = (m["rss"] - m["idle_rss"]) / n / 1024
                print(f"  N={n:4d} up={m['up']:4.0f}  ringback CPU {m['cpu']:6.1f}% (idle {m['idle_cpu']:.1f}%)  "
                      f"RSS {m['rss'] / 2**20:6.1f} MiB  per call: {per_cpu:.3f}% CPU, {per_rss:.0f} KiB;  "
                      f"SIPp CPU {m['sipp_cpu']:.1f}%")


if __name__ == "__main__":
    main()
